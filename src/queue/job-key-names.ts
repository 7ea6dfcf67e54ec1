/** The BullMQ keys of one target's queue that the route script writes, in KEYS order (before the job hash). */
export const JOB_KEY_NAMES = ['wait', 'paused', 'meta', 'id', 'active', 'events', 'marker'] as const;
