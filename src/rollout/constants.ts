/** The highest rank there is: a stage bounded by it includes every node (the last, 100% stage). */
export const MAX_RANK = 'f'.repeat(64)

/** Stages per rollout. Ansible and Salt users rarely go past four or five; ten leaves room without letting a record grow unbounded. */
export const MAX_STAGES = 10

/**
 * Peer ids a tag-selector stage may list in the record. The record gossips like a policy and a
 * policy envelope is bounded too (src/envelope/constants.ts); a canary group is small by nature.
 */
export const MAX_STAGE_NODES = 1000

/** Characters of the `--rollout` flag: ten stages of a long tag selector fit easily. */
export const MAX_STAGES_SPEC_CHARS = 2000

/** Percentages are kept to three decimals (0.001%), so a cutoff computed on any node is the same integer. */
export const PERCENT_SCALE = 1000

/** Why a record was paused, halted or aborted: long enough for a failure summary, bounded like `force`. */
export const MAX_REASON_CHARS = 500

/** Prefix of a rollout record's name: `rollout/web/site` carries the rollout of `web/site`. */
export const ROLLOUT_NAME_PREFIX = 'rollout/'
