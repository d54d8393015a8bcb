/**
 * Holds N raw connections to a peer, each introduced by a HELLO with its own node id,
 * reading and discarding whatever arrives: neighbours that cost the measured peer a
 * link each, without being peers themselves. Usage: bun clients.ts PORT N
 */
import { encodeHello } from "../../src/protocol/hello.ts";

const [port, count] = process.argv.slice(2).map(Number) as [number, number];
let open = 0;
for (let i = 0; i < count; i++) {
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data() {},
      open() {
        open++;
      },
    },
  });
  socket.write(
    encodeHello({
      nodeId: crypto.getRandomValues(new Uint8Array(32)),
      listenPort: 0,
      nick: `client${i}`,
    }),
  );
}
process.stdout.write(`${JSON.stringify({ open })}\n`);
setInterval(() => {}, 1 << 30);
