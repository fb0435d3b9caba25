export type { ExternalResource } from '../sandbox/resources.ts';

/** A gateway dispatch as Discord sends it (op 0). */
export interface GatewayDispatch {
  op: number;
  t: string | null;
  s: number | null;
  d: unknown;
}
