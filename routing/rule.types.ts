// The routing-rules engine's data: rules as loaded from routing-rules/*.yaml (see
// routing/rules.schema.json for the file format and its semantics), what they are evaluated
// against, and the decision they produce. Rules are plain data (no RegExp or class instances) so a
// rule set can be logged, shown by the inspector or sent between actors; patterns are compiled
// (and cached) where they are used.
import type { CharsetPolicy } from '../protocol/dataset-rewrite.ts';

export type { CharsetPolicy };

/** What rules see of the association an instance arrived on. */
export type Association = {
  callingAeTitle: string;
  calledAeTitle: string;
  /** The listener's name (config listeners[].name). */
  listener: string;
  /** The peer's IP address as the socket reports it (IPv4-mapped IPv6 matches IPv4 ranges). */
  remoteAddress: string;
  /** Subject DN of the peer's TLS certificate; absent on plain TCP (then tlsSubject conditions never hold). */
  tlsSubject?: string;
};

export type RoutingInput = {
  association: Association;
  /** dcmjs naturalized, as from protocol/dataset-header.ts parseHeader(...).dataset. */
  dataset: Record<string, unknown>;
};

/** A top-level attribute of the dataset. */
export type AttributeRef =
  /** By keyword or tag: tag is 8 upper-case hex digits; keyword and vr come from the dcmjs dictionary when the tag is in it. */
  | { kind: 'tag'; tag: string; keyword?: string; vr?: string }
  /** A private element by its creator: (group,xxEE) where xx is whichever block `creator` reserved (PS3.5 7.8.1). */
  | { kind: 'private'; group: string /* 4 hex */; element: string /* 2 hex, low byte */; creator: string };

export type Scalar = string | number;
export type RangeKind = 'date' | 'time' | 'datetime' | 'number';

/**
 * How an attribute's values are tested. A multi-valued attribute matches if any value does.
 * Strings compare after trimming padding; a number (`value` of type number) compares numerically.
 */
export type ValueMatcher =
  | { op: 'equals'; value: Scalar }
  | { op: 'in'; values: Scalar[] }
  /** DICOM wildcard matching (PS3.4 C.2.2.2.4): `*` any run of characters, `?` one character; whole value. */
  | { op: 'wildcard'; pattern: string }
  /** JavaScript regular expression, searched anywhere in the value (anchor with ^ $). */
  | { op: 'regex'; pattern: string }
  /** Inclusive; a bound is compared at its own precision ('2024' covers the whole year). */
  | { op: 'range'; kind: RangeKind; from?: Scalar; to?: Scalar }
  /** true: present with a non-empty value; false: absent or empty. */
  | { op: 'exists'; value: boolean };

/** Matchers for association fields (AE titles, listener name, TLS subject): strings only, no range/exists. */
export type TextMatcher = Extract<ValueMatcher, { op: 'equals' | 'in' | 'wildcard' | 'regex' }>;

export type AssociationField = 'callingAe' | 'calledAe' | 'listener' | 'tlsSubject';

export type Condition =
  | { kind: 'all'; conditions: Condition[] }
  | { kind: 'any'; conditions: Condition[] }
  | { kind: 'not'; condition: Condition }
  | { kind: 'association'; field: AssociationField; match: TextMatcher }
  /** IPv4/IPv6 addresses or CIDR ranges; the condition holds if the remote address is in any. */
  | { kind: 'sourceAddress'; ranges: string[] }
  | { kind: 'attribute'; attribute: AttributeRef; match: ValueMatcher };

/** A change to what is forwarded (the stored original never changes); applied in order, each seeing the previous ones' result. */
export type Modification =
  | { op: 'set'; target: AttributeRef; value: string | number | string[] }
  /** `{{Keyword}}` or `{{(gggg,eeee)}}` placeholders, replaced by the attribute's current value (values joined with '\', absent = ''). */
  | { op: 'set'; target: AttributeRef; template: string }
  | { op: 'remove'; target: AttributeRef }
  /** Absent source: the target is left as it is. */
  | { op: 'copy'; from: AttributeRef; to: AttributeRef }
  /** Every match of `regex` in each value is replaced (JavaScript replacement syntax: $1, $&). */
  | { op: 'replace'; target: AttributeRef; regex: string; with: string }
  /**
   * The rule's `charset`: what to do with a value the instance's character set cannot hold. Not a
   * change itself; it travels last in the list so queue items, completion groups and duplicate
   * fingerprints carry it with the modifications it governs. Absent = convert-to-utf8.
   */
  | { op: 'charset'; policy: CharsetPolicy };

export type ForwardTarget = { peer: string; failover?: string };

/** Prior studies to fetch on the first instance of a new study (see rules.schema.json "prefetch"). */
export type PrefetchAction = {
  /** Peer name of the Query/Retrieve SCP. */
  archive: string;
  /** Move Destination AE title. */
  destination: string;
  queryModel: 'study-root' | 'patient-root';
  /** ModalitiesInStudy must contain one of these. Entries may hold {{Keyword}} placeholders (the triggering instance's values). */
  modalities?: string[];
  /** StudyDate no older than this many days before the trigger (from `within`: d, m = 30 d, y = 365 d). */
  withinDays?: number;
  /** Regular expressions (JavaScript) on StudyDescription and BodyPartExamined; {{Keyword}} placeholders are replaced by the triggering instance's values, regex-escaped. */
  description?: string;
  bodyPart?: string;
  excludeTriggeringStudy: boolean;
  max: number;
  dedupHours: number;
  /** Peer name of the destination's Q/R SCP: before each move, a prior it already holds in full (NumberOfStudyRelatedInstances) is skipped. */
  skipIfDestinationHas?: string;
};

export type RuleActions = {
  forward: ForwardTarget[];
  /** Applied to this rule's forwards only. */
  modify: Modification[];
  drop: boolean;
  reject?: { status: number; comment: string };
  prefetch?: PrefetchAction;
};

/** A series a study-level trigger waits for: each given field must match (DICOM wildcards, trimmed). */
export type RequiredSeries = { modality?: string; seriesDescription?: string };

/**
 * Hold a rule's forwards until the series or study is complete (see rules.schema.json "trigger"):
 * quiet for quietSeconds, or (study) every requiredSeries present, or maxWaitSeconds after its first
 * instance at the latest.
 */
export type CompletionTrigger = {
  per: 'series' | 'study';
  quietSeconds: number;
  maxWaitSeconds: number;
  requiredSeries?: RequiredSeries[];
  afterFired: 'new-instances' | 'resend-study' | 'ignore';
};

/** A study/series-level condition, evaluated on the group's facts when it fires. */
export type CompletionCondition =
  | { kind: 'modalities'; includes?: string[]; excludes?: string[] }
  | { kind: 'seriesCount'; min?: number; max?: number }
  | { kind: 'instanceCount'; min?: number; max?: number }
  /** Any calling AE title seen in the group matches one of these (DICOM wildcards). */
  | { kind: 'callingAe'; in: string[] };

/** A rule's completion trigger with its conditions, as carried by the forwards it holds. */
export type Completion = { trigger: CompletionTrigger; whenComplete: CompletionCondition[] };

export type Rule = {
  name: string;
  description?: string;
  /** Lower runs first; ties: file name, then position in the file. */
  priority: number;
  /** After this rule matches, do later rules still run? */
  continue: boolean;
  /** Storage commitment of what it forwards: the strictest of this and the listener's commitWhen applies (issue 15). */
  commitWhen?: 'stored' | 'delivered' | 'committed-downstream';
  /** All must hold; empty = matches everything. */
  when: Condition[];
  then: RuleActions;
  /** Absent: the rule acts per instance. Present: its forwards wait for series/study completion. */
  completion?: Completion;
  file: string;
  /** 1-based line of the rule in its file. */
  line: number;
};

export type RuleSet = { rules: Rule[] /* in evaluation order */; files: string[]; loadedAt: string /* ISO 8601 */ };

/** One destination of a decision, with the modifications of the rule that named it. */
export type Forward = ForwardTarget & {
  modifications: Modification[];
  rule: string;
  /** The rule holds its forwards until the series/study is complete (actors/jobs/completion.ts). */
  completion?: Completion;
};

export type ConditionTrace = { text: string; ok: boolean; why: string; /** nesting under all/any/not, 0 at the top */ depth: number };

export type RuleTrace = {
  rule: string;
  file: string;
  line: number;
  priority: number;
  matched: boolean;
  conditions: ConditionTrace[];
  /** Set when the rule was not evaluated: why (an earlier rule stopped evaluation). */
  skipped?: string;
};

export type RoutingDecision = {
  /** De-duplicated by peer (the first rule naming a peer wins), in rule order; empty when dropped or rejected. */
  forward: Forward[];
  /** Every modification of the matched rules, in order (what each peer receives is in forward[i].modifications). */
  modifications: Modification[];
  /** A matched rule said drop: acknowledge, record, forward nowhere. */
  drop: boolean;
  /** Answer the C-STORE with this failure status; nothing is stored. */
  reject?: { status: number; comment: string };
  matchedRules: string[];
  trace: RuleTrace[];
  /** Things explain should say that are not about one condition: forwards ignored as duplicates or because of drop/reject. */
  notes: string[];
  /** Prefetches the matched rules ask for (absent when none), each with its rule's name. */
  prefetch?: (PrefetchAction & { rule: string })[];
};

/** One net change to a top-level element, for the byte-level rewriter. */
export type Change = {
  keyword?: string;
  /** 8 hex digits, upper case, e.g. '00080080'. */
  tag: string;
  action: 'set' | 'remove';
  /** For 'set': the DICOM value: a string (PN as 'Alphabetic=Ideographic=Phonetic'), a number, or a list for several values. */
  value?: string | number | string[];
};
