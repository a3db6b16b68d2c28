// Imported first by the router's entry point, before the rest of the module graph exists: V8 sizes its
// heap for memory rather than for the last bit of allocation speed. Measured receiving 3000 × 4 KB
// on the 2-core VM: peak RSS 156 MB instead of 261 MB (the default young and old generations grow
// to ~100 MB more than the ~40 MB the router keeps live), with no throughput difference the runs
// could show. An appliance beside a PACS should not take memory it does not use.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--optimize-for-size');
