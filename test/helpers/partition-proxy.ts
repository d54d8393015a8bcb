import type { Socket, TCPSocketListener } from "bun";
import type { Endpoint } from "../../src/protocol/endpoint.ts";
import type { StreamDial } from "../../src/transport/byte-stream.ts";
import { dialTcp } from "../../src/transport/tcp.ts";

/** Which half of the network a listen port belongs to. */
export type Side = "left" | "right";

/**
 * A TCP proxy between two halves of an in-process network. Every connection from one
 * half to the other goes through it (each peer dials through {@link dialer}), so the
 * proxy can partition the network the two ways networks fail:
 * - `blackhole()`: packets stop (a pulled cable): connections stay open, bytes wait;
 * - `cut()`: connections are reset and new ones refused (a restarted firewall, NAT
 *   timeouts);
 * and `heal()` lets everything through again.
 */
export class PartitionProxy {
  private readonly sides = new Map<number, Side>();
  private readonly fronts = new Map<number, TCPSocketListener<Pipe>>();
  private readonly pipes = new Set<Pipe>();
  private state: "open" | "blackhole" | "cut" = "open";

  /** Declares the half that the peer listening on `port` belongs to. */
  assign(port: number, side: Side): void {
    this.sides.set(port, side);
  }

  /** The dial function for a peer in `side`: direct within its half, via the proxy across. */
  dialer(side: Side): StreamDial {
    return (endpoint: Endpoint) => {
      const target = this.sides.get(endpoint.port);
      if (target === undefined || target === side) return dialTcp(endpoint);
      return dialTcp({ host: "127.0.0.1", port: this.front(endpoint).port });
    };
  }

  blackhole(): void {
    this.state = "blackhole";
  }

  cut(): void {
    this.state = "cut";
    for (const pipe of this.pipes) pipe.destroy();
  }

  heal(): void {
    this.state = "open";
    for (const pipe of this.pipes) pipe.flush();
  }

  close(): void {
    for (const pipe of this.pipes) pipe.destroy();
    for (const front of this.fronts.values()) front.stop(true);
  }

  private front(target: Endpoint): TCPSocketListener<Pipe> {
    const known = this.fronts.get(target.port);
    if (known) return known;
    const front = Bun.listen<Pipe>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        binaryType: "uint8array",
        open: (client) => {
          if (this.state === "cut") {
            client.terminate();
            return;
          }
          const pipe = new Pipe(
            client,
            () => this.state === "open",
            () => this.pipes.delete(pipe),
          );
          client.data = pipe;
          this.pipes.add(pipe);
          void Bun.connect<Pipe>({
            hostname: target.host,
            port: target.port,
            socket: {
              binaryType: "uint8array",
              open: (upstream) => {
                upstream.data = pipe;
                pipe.attach(upstream);
              },
              data: (_s, chunk: Uint8Array) => pipe.fromUpstream(chunk),
              drain: () => pipe.flush(),
              close: () => pipe.destroy(),
              connectError: () => pipe.destroy(),
            },
          }).catch(() => pipe.destroy());
        },
        data: (client, chunk: Uint8Array) => client.data?.fromClient(chunk),
        drain: (client) => client.data?.flush(),
        close: (client) => client.data?.destroy(),
      },
    });
    this.fronts.set(target.port, front);
    return front;
  }
}

/** One proxied connection: bytes held while the partition lasts, forwarded otherwise. */
class Pipe {
  private upstream: Socket<Pipe> | undefined;
  private toUpstream: Uint8Array[] = [];
  private toClient: Uint8Array[] = [];
  private dead = false;

  constructor(
    private readonly client: Socket<Pipe>,
    private readonly open: () => boolean,
    private readonly onDead: () => void,
  ) {}

  attach(upstream: Socket<Pipe>): void {
    this.upstream = upstream;
    this.flush();
  }

  fromClient(chunk: Uint8Array): void {
    this.toUpstream.push(chunk.slice());
    this.flush();
  }

  fromUpstream(chunk: Uint8Array): void {
    this.toClient.push(chunk.slice());
    this.flush();
  }

  flush(): void {
    if (this.dead || !this.open()) return;
    if (this.upstream) this.toUpstream = drain(this.upstream, this.toUpstream);
    this.toClient = drain(this.client, this.toClient);
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.client.terminate();
    this.upstream?.terminate();
    this.onDead();
  }
}

/** Writes queued chunks until the socket pushes back; returns what is left. */
function drain(socket: Socket<Pipe>, queue: Uint8Array[]): Uint8Array[] {
  while (queue.length > 0) {
    const chunk = queue[0] as Uint8Array;
    const written = socket.write(chunk);
    if (written < 0) return [];
    if (written < chunk.length) {
      queue[0] = chunk.subarray(written);
      return queue;
    }
    queue.shift();
  }
  return queue;
}
