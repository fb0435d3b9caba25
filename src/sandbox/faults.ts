/**
 * Named fault points inside each operation, for crash and chaos tests. Production code passes
 * no injector, so `hit` is a no-op. A test injector may throw, hang, or exit the process.
 */
export type FaultPoint =
  | 'create:after-creating'
  | 'create:after-schema'
  | 'create:before-running'
  | 'destroy:after-destroying'
  | 'destroy:after-drop'
  | 'extend:before-update'
  | 'reset:after-rebuild'
  | 'clone:after-schema'
  | 'register:before-insert'
  | 'sweep:before-item';

export interface FaultInjector {
  hit(point: FaultPoint, context: { sandboxId?: string }): void | Promise<void>;
}

export const noFaults: FaultInjector = { hit: () => undefined };

export class InjectedFault extends Error {
  constructor(readonly point: FaultPoint) {
    super(`injected fault at ${point}`);
    this.name = 'InjectedFault';
  }
}
