/**
 * Holds N links to a peer, each a real secure channel introduced by a HELLO with its own
 * identity, reading and discarding whatever arrives: neighbours that cost the measured
 * peer a link each, without being peers themselves. Usage: bun clients.ts PORT N
 */
import { encodeHello } from "../../src/protocol/hello.ts";
import { generateIdentity } from "../../src/secure/identity.ts";
import { DEFAULT_ROOM } from "../../src/secure/room.ts";
import { secureDialer } from "../../src/secure/secure-dialer.ts";
import { channelOptions } from "../../src/secure/secure-stream.ts";
import { dialTcp } from "../../src/transport/tcp.ts";

const [port, count] = process.argv.slice(2).map(Number) as [number, number];
let open = 0;
for (let i = 0; i < count; i++) {
  const identity = generateIdentity();
  const dial = secureDialer(dialTcp, channelOptions(identity, DEFAULT_ROOM));
  const result = await dial({ host: "127.0.0.1", port });
  if (!result.ok) continue;
  result.stream.start({ data() {}, close() {} });
  result.stream.write(
    encodeHello({ nodeId: identity.publicKey, listenPort: 0, nick: `client${i}` }),
  );
  open++;
}
process.stdout.write(`${JSON.stringify({ open })}\n`);
setInterval(() => {}, 1 << 30);
