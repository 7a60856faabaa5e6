/** The `--rollout` flag (or a stage list in a record) cannot be read; `stage` is the offending stage as written. */
export class InvalidStagesError extends Error {
  static override name: string = 'InvalidStagesError'
  override name: string = 'InvalidStagesError'
  constructor (message: string, readonly stage?: string) {
    super(message)
  }
}

/** A stage of 0 nodes or 0%, or a percentage above 100%. */
export class StageSizeError extends InvalidStagesError {
  static override name = 'StageSizeError'
  override name = 'StageSizeError'
}

/** Stages must grow: each count or percentage larger than the one before, and no count after a percentage. */
export class StagesNotIncreasingError extends InvalidStagesError {
  static override name = 'StagesNotIncreasingError'
  override name = 'StagesNotIncreasingError'
}

/** The last stage must be 100%, or some targeted nodes would never get the version. */
export class LastStageNotAllError extends InvalidStagesError {
  static override name = 'LastStageNotAllError'
  override name = 'LastStageNotAllError'
}

/** A count stage needs the publisher's view of the targeted nodes, and it has none. */
export class NoTargetedNodesError extends Error {
  static override name = 'NoTargetedNodesError'
  override name = 'NoTargetedNodesError'
}

/** A `--max-failures` value that is not N or P%. */
export class InvalidMaxFailuresError extends Error {
  static override name = 'InvalidMaxFailuresError'
  override name = 'InvalidMaxFailuresError'
}

/** `nextRecord` was asked for a transition the rollout's state does not allow (advance a paused rollout, resume an aborted one). */
export class RolloutTransitionError extends Error {
  static override name = 'RolloutTransitionError'
  override name = 'RolloutTransitionError'
  constructor (readonly from: string, readonly action: string, detail?: string) {
    super(`cannot ${action} a rollout that is ${from}${detail !== undefined ? `: ${detail}` : ''}`)
  }
}
