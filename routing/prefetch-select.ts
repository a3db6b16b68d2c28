// Which prior studies a prefetch rule asks for: the C-FIND identifier (same patient, StudyDate
// range when the rule has a window, return keys for the selection), and the selection over the
// archive's STUDY-level matches (modality list, window, description/body-part regex, the
// triggering study left out, newest first, at most N). Pure code.
import type { PrefetchAction } from './rule.types.ts';

export type PriorCandidate = {
  studyInstanceUid: string;
  studyDate?: string;
  studyTime?: string;
  modalities: string[];
  description?: string;
  bodyPart?: string;
  accessionNumber?: string;
};

export type PrefetchTrigger = {
  patientId: string;
  issuerOfPatientId?: string;
  studyInstanceUid: string;
  /** When the job was planned: the date window counts back from it. */
  at: Date;
};

/** YYYYMMDD of a date, in UTC (StudyDate has no zone; a day either way does not matter for a window of days). */
export function dicomDate(d: Date): string {
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}

export function windowStart(action: PrefetchAction, at: Date): string | undefined {
  return action.withinDays === undefined ? undefined : dicomDate(new Date(at.getTime() - action.withinDays * 86_400_000));
}

/** C-FIND keys at STUDY level: matching keys for the patient and the window, return keys for the rest (PS3.4 C.6.2.1.2). */
export function priorQueryKeys(action: PrefetchAction, trigger: PrefetchTrigger): Record<string, string> {
  const since = windowStart(action, trigger.at);
  return {
    PatientID: trigger.patientId,
    ...(trigger.issuerOfPatientId ? { IssuerOfPatientID: trigger.issuerOfPatientId } : {}),
    StudyInstanceUID: '',
    StudyDate: since ? `${since}-` : '',
    StudyTime: '',
    AccessionNumber: '',
    ModalitiesInStudy: '',
    StudyDescription: '',
    // Not a standard STUDY-level key; archives that return it let bodyPart select.
    ...(action.bodyPart ? { BodyPartExamined: '' } : {}),
  };
}

function text(v: unknown): string | undefined {
  const first = Array.isArray(v) ? v[0] : v;
  if (typeof first === 'number') return String(first);
  if (typeof first !== 'string') return undefined;
  const s = first.trim();
  return s === '' ? undefined : s;
}

/** A C-FIND match (dcmjs naturalized) as a candidate; undefined without a Study Instance UID. */
export function candidateOf(match: Record<string, unknown>): PriorCandidate | undefined {
  const uid = text(match.StudyInstanceUID);
  if (!uid) return undefined;
  const mods = match.ModalitiesInStudy;
  const modalities = (Array.isArray(mods) ? mods : typeof mods === 'string' ? mods.split('\\') : []).map((m) => String(m).trim()).filter((m) => m !== '');
  const c: PriorCandidate = { studyInstanceUid: uid, modalities };
  const set = (k: 'studyDate' | 'studyTime' | 'description' | 'bodyPart' | 'accessionNumber', v: unknown) => {
    const s = text(v);
    if (s !== undefined) c[k] = s;
  };
  set('studyDate', match.StudyDate);
  set('studyTime', match.StudyTime);
  set('description', match.StudyDescription);
  set('bodyPart', match.BodyPartExamined);
  set('accessionNumber', match.AccessionNumber);
  return c;
}

export type Selection = { selected: PriorCandidate[]; left: { studyInstanceUid: string; why: string }[] };

/** The priors to move, newest first, and why each other candidate was left. */
export function selectPriors(candidates: PriorCandidate[], action: PrefetchAction, trigger: PrefetchTrigger): Selection {
  const left: Selection['left'] = [];
  const since = windowStart(action, trigger.at);
  const description = action.description ? new RegExp(action.description) : undefined;
  const bodyPart = action.bodyPart ? new RegExp(action.bodyPart) : undefined;
  const seen = new Set<string>();
  const kept: PriorCandidate[] = [];
  for (const c of candidates) {
    const why =
      seen.has(c.studyInstanceUid) ? 'listed twice by the archive'
      : action.excludeTriggeringStudy && c.studyInstanceUid === trigger.studyInstanceUid ? 'the triggering study'
      : action.modalities && !c.modalities.some((m) => action.modalities!.includes(m)) ? `modalities ${c.modalities.join('/') || '(none)'} not in ${action.modalities.join('/')}`
      : since && (!c.studyDate || c.studyDate.slice(0, 8) < since) ? `study date ${c.studyDate ?? '(none)'} before ${since}`
      : description && !(c.description && description.test(c.description)) ? `description ${JSON.stringify(c.description ?? '')} does not match /${action.description}/`
      : bodyPart && !(c.bodyPart && bodyPart.test(c.bodyPart)) ? `body part ${JSON.stringify(c.bodyPart ?? '')} does not match /${action.bodyPart}/`
      : undefined;
    seen.add(c.studyInstanceUid);
    if (why) left.push({ studyInstanceUid: c.studyInstanceUid, why });
    else kept.push(c);
  }
  // Newest first: by date then time; a study without a date goes last.
  const key = (c: PriorCandidate) => `${c.studyDate ?? ''}${(c.studyTime ?? '').padEnd(13, '0')}`;
  kept.sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0));
  for (const c of kept.slice(action.max)) left.push({ studyInstanceUid: c.studyInstanceUid, why: `beyond the newest ${action.max}` });
  return { selected: kept.slice(0, action.max), left };
}
