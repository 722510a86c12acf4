// Types of client.js, Envelope Router's JavaScript client (hand-written, checked by the
// test suite with `tsc --strict`). The generated contract module (`envelope schema
// --out DIR` writes contract.ts next to this file) types every message on top of it.

/** A reply state: acknowledged, queued, running, success, failed. */
export type ReplyState = "a" | "q" | "r" | "s" | "f";

/** A frame as it travels: type, trace id, payload, state (replies only). */
export interface Frame {
  t: string;
  i?: string | null;
  p?: unknown;
  s?: ReplyState;
}

export type Status = "idle" | "connecting" | "open" | "reconnecting";

// A handler whose parameter is checked both ways, so that the browser's WebSocket and
// Node's `ws` (whose events carry more than these fields) both fit `SocketLike`.
type Handler<E> = { handle(event: E): void }["handle"] | null;

/** What the client needs of a WebSocket: the browser's, or Node's `ws`. */
export interface SocketLike {
  onopen: Handler<unknown>;
  onmessage: Handler<{ data: unknown }>;
  onclose: Handler<{ code: number; reason: string; wasClean: boolean }>;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type SocketConstructor = new (url: string) => SocketLike;

export interface ClientOptions {
  /** ms per request; 0 waits forever (default 10000). */
  timeout?: number;
  reconnect?: boolean;
  minDelay?: number;
  maxDelay?: number;
  subscribeType?: string;
  leaveType?: string;
  /** The WebSocket class (default: `globalThis.WebSocket`). */
  WebSocket?: SocketConstructor;
}

export interface RequestOptions {
  timeout?: number;
  onState?: ((state: ReplyState, payload: unknown, frame: Frame) => void) | null;
  i?: string | number | null;
}

/** A request's promise, carrying the request's trace id. */
export type PendingRequest = Promise<unknown> & { i: string };

export interface CloseInfo {
  code: number;
  reason: string;
  wasClean: boolean;
}

export declare function newTraceId(): string;

/** What a failed request rejects with: the `f` payload's `code` and `message`, and all of it. */
export declare class EnvelopeError extends Error {
  constructor(payload: unknown, origin?: { t?: string | null; i?: string | null });
  code: string;
  payload: { [key: string]: unknown };
  t: string | null;
  i: string | null;
}

export declare class EnvelopeClient {
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  status: Status;
  lastClose: CloseInfo | null;
  attempts: number;
  topics: Set<string>;
  connect(): Promise<EnvelopeClient>;
  opened(): Promise<EnvelopeClient>;
  close(code?: number, reason?: string): void;
  request(t: string, p?: unknown, options?: RequestOptions): PendingRequest;
  send(t: string, p?: unknown, options?: { i?: string | number | null }): string;
  on(t: string, fn: (payload: unknown, frame: Frame) => void): () => void;
  subscribe(topic: string, options?: RequestOptions): PendingRequest;
  leave(topic: string, options?: RequestOptions): Promise<unknown>;
  /** Who is in a `presence=True` topic: user (pk) -> the topic's `presence_info`. */
  presence(
    topic: string,
    onChange?: (users: Map<string, Record<string, unknown>>) => void,
  ): { users: Map<string, Record<string, unknown>>; stop(): void };
  onStatus(fn: (status: Status, client: EnvelopeClient) => void): () => void;
  onFrame(fn: (direction: "in" | "out", frame: Frame, at: number) => void): () => void;
}

export declare function connect(url: string, options?: ClientOptions): EnvelopeClient;
