import { afterEach, describe, test } from "bun:test";
import { fromSource } from "../helpers/cli.ts";
import {
  failures,
  headlessRelay,
  jsonChain,
  oneShotSend,
  readmeChain,
  roomsAndIdentity,
  SCENARIO_TIMEOUT_MS,
  shellPipeline,
  stopAll,
} from "./scenarios.ts";

afterEach(stopAll);

describe("the CLI from source (bun src/bin.ts)", () => {
  const scenarios = [
    [
      "the README's three-peer chain: piped lines appear once at every peer; /quit leaves",
      readmeChain,
    ],
    ["--json: NDJSON only, with ready, message, peer-up and peer-down events", jsonChain],
    ["peerchat send reaches a running peer; exit 1 when nobody listens", oneShotSend],
    ["failures: address in use, bad arguments, late bootstrap peer", failures],
    ["end of piped input leaves a working relay; unsafe text is neutralised", headlessRelay],
    [
      "in a shell pipeline: early lines arrive; a closed stdout makes the peer leave",
      shellPipeline,
    ],
    [
      "--room: another room cannot join and is told why; --identity keeps the node id",
      roomsAndIdentity,
    ],
  ] as const;
  for (const [name, scenario] of scenarios)
    test(name, () => scenario(fromSource), SCENARIO_TIMEOUT_MS);
});
