// The role driver's SQL lives in the store (src/sandbox/store/roles.ts); this keeps the old import path.
export * from './store/roles.ts';
