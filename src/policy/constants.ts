/** A policy file larger than this is refused before parsing: 1 MiB holds thousands of resources. */
export const MAX_POLICY_FILE_BYTES = 1024 * 1024

/** A `source:` file larger than this is refused: policies gossip to every node, so big blobs belong in packages. */
export const MAX_SOURCE_BYTES = 1024 * 1024

/** Enough for the 1,000-file benchmark with room to spare, small enough to bound plan work. */
export const MAX_RESOURCES = 5000

/** Bounds any single string field (file content included) after templating. */
export const MAX_STRING_LENGTH = 1024 * 1024

/** An exec may run at most a day; anything longer is a job, not configuration. */
export const MAX_EXEC_TIMEOUT_SECONDS = 86_400

/**
 * Bytes that templates may expand to over one render of a policy on a node (every resource
 * together; whole-value references count what they add), so a policy cannot write many
 * times its own size by repeating a large var: 48 references to a 1 MiB var wrote 48 MiB.
 */
export const MAX_TEMPLATE_OUTPUT = 4 * 1024 * 1024

/**
 * Deepest nesting of objects and arrays in a policy, counting the policy itself as 1, so
 * config `data` gets about 60 levels (real configurations, Kubernetes manifests included,
 * rarely pass 20). Every walk over policy data (canonical JSON, schema, templates, the
 * config writers) recurses, and so does the yaml library's composer: it overflows the stack
 * near 1,000 levels, and has been seen to abort the process ("RegExpCompiler Allocation
 * failed", exit 134) rather than throw. Checked first, without recursion, so that every later
 * walk is shallow.
 */
export const MAX_POLICY_DEPTH = 64

/** Health checks per policy: each runs after every apply, so a long list would stall the queue. */
export const MAX_CHECKS = 100

/** One check attempt may take at most 5 minutes: a check says whether the service works now, it is not a job. */
export const MAX_CHECK_TIMEOUT_SECONDS = 300

/** Retries per check: with the interval bound, a check can wait out a slow service start, not hold the apply queue for hours. */
export const MAX_CHECK_RETRIES = 100

/** Seconds between check attempts, at most. */
export const MAX_CHECK_INTERVAL_SECONDS = 300

/**
 * The longest all of a policy's checks may take, every attempt timing out: (retries + 1) ×
 * timeout + retries × interval, summed. The agent applies one policy at a time, so checks that
 * could run for hours would hold every other policy's applies (and drift repairs) back.
 */
export const MAX_CHECKS_SECONDS = 900
