// Drives the generated, typed client (contract.ts over client.js) against a live example
// server, in Node with `ws`. Compiled with `tsc --strict` first: the @ts-expect-error
// lines below fail the compilation if the contract stops rejecting what they do.
//
//   node driver.js <ws url> <session cookie>
// Prints one JSON object per scenario: {"scenario": ..., ...what the client saw}.

import WebSocket from "ws";

import {
  ContractClient,
  EnvelopeClient,
  isRequestError,
  type ChatMessage,
  type ErrorCode,
  type ReportProgress,
  type TopicPush,
} from "./contract.js";

const [url, cookie] = process.argv.slice(2);

// client.js opens `new options.WebSocket(url)`: this one sends the session cookie.
class CookieSocket extends WebSocket {
  constructor(address: string) {
    super(address, { headers: cookie ? { Cookie: cookie } : {} });
  }
}

function report(scenario: string, seen: object): void {
  console.log(JSON.stringify({ scenario, ...seen }));
}

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<T>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} in ${ms} ms`)), ms);
  });
  // Cleared once settled: a pending timer keeps Node running until it fires, which held
  // the driver's exit 10 s after its last scenario.
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// Never called: what the compiler must refuse (checked by `tsc --strict`).
export function typeChecks(client: ContractClient): void {
  // @ts-expect-error: echo's payload has `text`, not `txt`
  void client.call("echo", { txt: "hi" });
  // @ts-expect-error: echo's `text` is a string
  void client.call("echo", { text: 1 });
  // @ts-expect-error: no such message type
  void client.call("no.such.type", {});
  // @ts-expect-error: connection.close is declared reply=False: `send` it, nothing to await
  void client.call("connection.close");
  client.send("connection.close");
  void client.call("ping"); // a payload-less type needs no payload
  void client.call("echo", { text: "hi" }).then((reply) => {
    // @ts-expect-error: echo replies `Echoed`, whose `text` is a string
    const n: number = reply.text;
    return n;
  });
  void client.call("echo", { text: "x" }).catch((error: unknown) => {
    if (isRequestError(error, "echo")) {
      const code: ErrorCode<"echo"> = error.code;
      // @ts-expect-error: echo has no permission, it cannot fail with `forbidden`
      if (code === "forbidden") return;
    }
  });
  void client.call("report.build", { rows: 1 }, {
    onProgress: (progress) => {
      // @ts-expect-error: report.build's progress is ReportProgress, it has no `percent`
      void progress.percent;
    },
  });
  client.onTopic("room.{name}", (push) => {
    // @ts-expect-error: room topics publish chat.message only
    if (push.t === "topic.left") return;
  });
  // @ts-expect-error: no declared topic matches "lobby"
  void client.subscribe("lobby");
}

async function main(): Promise<void> {
  const client = new ContractClient(new EnvelopeClient(url, { WebSocket: CookieSocket, timeout: 20000 }));
  await within(10000, "connection", client.connect());

  const echoed = await client.call("echo", { text: "hi" });
  report("success", { text: echoed.text });

  try {
    await client.call("chat.send", { room: "no spaces allowed", text: "x" });
    report("validation", { failed: false });
  } catch (error: unknown) {
    if (!isRequestError(error, "chat.send")) throw error;
    const fields = (error.payload.errors ?? []).map((item) => item.loc.join("."));
    report("validation", { failed: true, code: error.code, fields, t: error.t });
  }

  const progress: ReportProgress[] = [];
  const states: string[] = [];
  const built = await client.call("report.build", { rows: 2500 }, {
    onProgress: (update) => progress.push(update),
    onState: (state) => states.push(state),
  });
  report("deferred", { reportId: built.report_id, rows: built.rows, progress, states });

  const pushed: Array<TopicPush<"room.{name}">> = [];
  const arrived = new Promise<ChatMessage>((resolve) => {
    client.onTopic("room.{name}", (push) => {
      pushed.push(push);
      resolve(push.p);
    });
  });
  await client.subscribe("room.lobby");
  await client.call("chat.send", { room: "lobby", text: "hello" });
  const message = await within(10000, "push", arrived);
  report("push", { t: pushed[0].t, room: message.room, text: message.text, author: message.author });

  client.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
