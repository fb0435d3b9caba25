import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PublisherObserver } from './publisher.ts';
import type { RouteTableObserver } from './route-table.ts';

const PUBLISH_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];
const INVALIDATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30];

/** The data plane's metrics, registered on the process's registry; the publisher and route table observers. */
export class RoutingMetrics {
  readonly routed: Counter<'destination'>;
  readonly dropped: Counter<'reason'>;
  readonly publishSeconds: Histogram;
  readonly entries: Gauge;
  readonly version: Gauge;
  readonly invalidationSeconds: Histogram;
  readonly reloads: Counter<'reason'>;
  readonly degraded: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.routed = new Counter({ name: 'sandbox_events_routed_total', help: 'Gateway events stored in JetStream, by destination', labelNames: ['destination'], registers });
    this.dropped = new Counter({ name: 'sandbox_events_dropped_total', help: 'Gateway events not published, by reason', labelNames: ['reason'], registers });
    this.publishSeconds = new Histogram({ name: 'sandbox_event_publish_seconds', help: 'From dispatch received to publish acked', buckets: PUBLISH_BUCKETS, registers });
    this.entries = new Gauge({ name: 'sandbox_route_table_entries', help: 'Guild mappings held by the in-memory route table', registers });
    this.version = new Gauge({ name: 'sandbox_route_table_version', help: 'Route version the in-memory table has applied', registers });
    this.invalidationSeconds = new Histogram({ name: 'sandbox_route_invalidation_seconds', help: 'From a mapping change commit to its being applied in this process', buckets: INVALIDATION_BUCKETS, registers });
    this.reloads = new Counter({ name: 'sandbox_route_table_reloads_total', help: 'Whole-table reloads, by reason', labelNames: ['reason'], registers });
    this.degraded = new Gauge({ name: 'sandbox_events_degraded', help: '1 while NATS is away or publishes fail (events are buffered)', registers });
    for (const d of ['sandbox', 'production']) this.routed.inc({ destination: d }, 0);
  }

  publisherObserver(): PublisherObserver {
    return {
      routed: (destination, seconds) => {
        this.routed.inc({ destination });
        this.publishSeconds.observe(seconds);
      },
      dropped: (reason) => this.dropped.inc({ reason }),
      degraded: (d) => this.degraded.set(d ? 1 : 0),
    };
  }

  routeTableObserver(): RouteTableObserver {
    return {
      applied: (entries, version) => {
        this.entries.set(entries);
        this.version.set(version);
      },
      invalidation: (seconds) => this.invalidationSeconds.observe(seconds),
      reloaded: (reason) => this.reloads.inc({ reason }),
    };
  }
}
