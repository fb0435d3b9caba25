import net from 'node:net';

export type ProxyDownMode = 'reset' | 'refuse' | 'starting' | 'blackhole';

/**
 * A TCP proxy in front of PostgreSQL that can simulate a database restart: `down()` cuts every
 * open connection and refuses new ones (the listener stays bound, each new socket is reset at
 * once, as a server that is shutting down or starting up would), `up()` accepts again.
 */
export class TcpProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private accepting = true;
  private mode: ProxyDownMode = 'reset';
  /** Connections attempted while down (each was reset). */
  refused = 0;
  /** Connections accepted and piped to the database. */
  accepted = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = net.createServer((client) => this.onConnection(client));
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target.host, target.port);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  private listeningPort = 0;

  get port(): number {
    return this.server.listening ? (this.server.address() as net.AddressInfo).port : this.listeningPort;
  }

  /** Rewrites a postgres URL to go through this proxy. */
  urlFor(databaseUrl: string): string {
    const u = new URL(databaseUrl);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  get openConnections(): number {
    return this.sockets.size;
  }

  private onConnection(client: net.Socket): void {
    client.on('error', () => undefined);
    if (!this.accepting) {
      this.refused++;
      if (this.mode === 'blackhole') {
        this.sockets.add(client); // accepted, never answered: the client's connect timeout decides
      } else if (this.mode === 'starting') {
        // What PostgreSQL itself answers while it restarts: FATAL 57P03 to the startup packet.
        client.once('data', () => client.end(startingUpError()));
      } else {
        client.resetAndDestroy();
      }
      return;
    }
    this.accepted++;
    const upstream = net.connect(this.targetPort, this.targetHost);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => {
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    });
    upstream.on('close', () => client.destroy());
    this.sockets.add(client);
    this.sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /**
   * The database "goes away": every connection is cut, and new ones fail until up(). With
   * `reset` the port still accepts and resets each connection at once; with `refuse` nothing
   * listens on the port (ECONNREFUSED), as when the server process is gone; with `starting`
   * each new connection gets PostgreSQL's own "the database system is starting up" (57P03);
   * with `blackhole` connections are accepted and never answered.
   */
  async down(mode: ProxyDownMode = 'reset'): Promise<void> {
    this.accepting = false;
    this.mode = mode;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    if (mode === 'refuse' && this.server.listening) {
      this.listeningPort = this.port;
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }
  }

  async up(): Promise<void> {
    this.accepting = true;
    if (!this.server.listening) {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(this.listeningPort, '127.0.0.1', () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    await this.down('refuse');
  }
}

/** A protocol ErrorResponse: FATAL 57P03 "the database system is starting up". */
function startingUpError(): Buffer {
  const fields = Buffer.concat(
    [['S', 'FATAL'], ['V', 'FATAL'], ['C', '57P03'], ['M', 'the database system is starting up']]
      .map(([k, v]) => Buffer.from(`${k}${v}\0`, 'utf8'))
      .concat([Buffer.from([0])]),
  );
  const header = Buffer.alloc(5);
  header.write('E', 0, 'ascii');
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}
