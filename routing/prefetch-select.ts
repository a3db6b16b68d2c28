// Which prior studies a prefetch rule asks for: the C-FIND identifier (same patient, StudyDate
// range when the rule has a window, return keys for the selection), and the selection over the
// archive's STUDY-level matches (modality list, window, description/body-part regex, the
// triggering study left out, newest first, at most N), and the rule's {{Keyword}} placeholders
// resolved from the triggering instance. Pure code.
import { find, valuesText } from './attributes.ts';
import type { PrefetchAction } from './rule.types.ts';
import { parseTemplate } from './templates.ts';

export type PriorCandidate = {
  studyInstanceUid: string;
  studyDate?: string;
  studyTime?: string;
  modalities: string[];
  description?: string;
  bodyPart?: string;
  accessionNumber?: string;
  /** NumberOfStudyRelatedInstances as the archive returned it (absent when it did not). */
  instances?: number;
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
    // What the destination check compares with (PS3.4 C.6.1.1.3: an optional return key).
    ...(action.skipIfDestinationHas ? { NumberOfStudyRelatedInstances: '' } : {}),
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
  const n = Number(text(match.NumberOfStudyRelatedInstances));
  if (text(match.NumberOfStudyRelatedInstances) !== undefined && Number.isInteger(n) && n >= 0) c.instances = n;
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

/** The fields of then.prefetch that may hold {{Keyword}} placeholders. */
export const TEMPLATED_FIELDS = ['modalities', 'description', 'bodyPart'] as const;
export type SelectionTemplates = Partial<Pick<PrefetchAction, (typeof TEMPLATED_FIELDS)[number]>>;

export const hasPlaceholder = (s: string) => s.includes('{{');

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * A template's text for the triggering dataset, or undefined when a placeholder's attribute is
 * absent or empty there. Values are trimmed (DICOM padding); in a regular expression they are
 * escaped, so "CHEST (PA)" matches literally.
 */
export function renderSelectionTemplate(template: string, dataset: Record<string, unknown>, regex: boolean): string | undefined {
  const parsed = parseTemplate(template);
  if ('problems' in parsed) throw new Error(`invalid template '${template}': ${parsed.problems.join('; ')}`);
  let out = '';
  for (const part of parsed.parts) {
    if ('text' in part) {
      out += part.text;
      continue;
    }
    const found = find(dataset, part.ref);
    const value = found.state === 'present' ? valuesText(found.values.map((v) => (typeof v === 'string' ? v.trim() : v))) : '';
    if (value === '') return undefined;
    out += regex ? escapeRegex(value) : value;
  }
  return out;
}

export type ResolvedSelection = {
  /** The action with every placeholder replaced; a criterion whose placeholder had no value is removed. */
  action: PrefetchAction;
  /** The fields as the rule wrote them, when any had placeholders (kept in the job record). */
  templates?: SelectionTemplates;
  /** What was resolved how, for the job's history. */
  notes: string[];
};

/**
 * Resolve `{{Keyword}}` placeholders in modalities, description and bodyPart from the triggering
 * instance. A criterion whose placeholder has no value there is dropped (not "match nothing"): the
 * rule's other criteria and max still bound the move, and a missing prior costs more than an extra
 * one. A modalities entry splits on '\\' (a multi-valued attribute gives several entries).
 */
export function resolveSelection(action: PrefetchAction, dataset: Record<string, unknown>): ResolvedSelection {
  const templates: SelectionTemplates = {};
  const notes: string[] = [];
  const resolved: PrefetchAction = { ...action };
  if (action.modalities?.some(hasPlaceholder)) {
    templates.modalities = action.modalities;
    const entries: string[] = [];
    for (const m of action.modalities) {
      const v = hasPlaceholder(m) ? renderSelectionTemplate(m, dataset, false) : m;
      if (v === undefined) notes.push(`modalities entry ${m} left out: no value in the triggering instance`);
      else for (const x of v.split('\\').map((s) => s.trim()).filter((s) => s !== '')) if (!entries.includes(x)) entries.push(x);
    }
    if (entries.length > 0) {
      resolved.modalities = entries;
      notes.push(`modalities ${action.modalities.join('/')} resolved to ${entries.join('/')}`);
    } else {
      delete resolved.modalities;
      notes.push(`modalities criterion ignored: ${action.modalities.join('/')} has no value in the triggering instance`);
    }
  }
  for (const key of ['description', 'bodyPart'] as const) {
    const t = action[key];
    if (t === undefined || !hasPlaceholder(t)) continue;
    templates[key] = t;
    const v = renderSelectionTemplate(t, dataset, true);
    if (v === undefined) {
      delete resolved[key];
      notes.push(`${key} criterion ignored: ${t} has no value in the triggering instance`);
    } else {
      resolved[key] = v;
      notes.push(`${key} ${t} resolved to /${v}/`);
    }
  }
  return { action: resolved, ...(Object.keys(templates).length > 0 ? { templates } : {}), notes };
}
