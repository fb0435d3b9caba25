import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import type pg from 'pg';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string;
  /** 1-minute load average when the run started: other work on a shared machine shows here. */
  loadAvgAtStart: number;
}

export async function machineInfo(pool: pg.Pool): Promise<MachineInfo> {
  const { rows } = await pool.query<{ v: string }>('SELECT version() AS v');
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    postgres: rows[0]!.v.split(' on ')[0]!,
    loadAvgAtStart: Math.round(loadavg()[0]! * 100) / 100,
  };
}

export const describeMachine = (m: MachineInfo): string =>
  `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}, load average ${m.loadAvgAtStart}\nNode ${m.node}, ${m.postgres}`;
