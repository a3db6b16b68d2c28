// How many cases a property test tries: its own count in `npm test` (bounded, well under a minute in
// all), that count times FUZZ_SCALE in `npm run fuzz` (the long run the hardening issue asks for).
const scale = Math.max(1, Number(process.env.FUZZ_SCALE ?? 1) || 1);

export function fuzzRuns(base: number): number {
  return Math.round(base * scale);
}
