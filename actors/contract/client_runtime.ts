// The part of contract.ts that is the same for every contract: the typed client over
// client.js. `envelope schema` appends it to the generated declarations, filling in
// __BATCH__ and __CLIENT_CODES__. (Not compiled on its own.)

export type RequestType = keyof Requests;
export type PushType = keyof Pushes;
export type TopicPattern = keyof Topics;
/** Types answered `s` (the others are declared `reply=False`: use `send`). */
export type CallType = { [T in RequestType]: "s" extends Requests[T]["state"] ? T : never }[RequestType];
export type SendType = Exclude<RequestType, CallType>;
export type Payload<T extends RequestType> = Requests[T]["payload"];
export type Reply<T extends RequestType> = Requests[T]["reply"];
export type Progress<T extends RequestType> = Requests[T]["progress"];
/** Codes the client itself rejects with: no answer in time, or the socket closed first. */
export type ClientErrorCode = __CLIENT_CODES__;
export type ErrorCode<T extends RequestType> = Requests[T]["code"] | ClientErrorCode;

/** A reply frame to a request of type `T`. */
export interface ReplyFrame<T extends RequestType = RequestType> {
  t: T;
  i: string;
  s: Requests[T]["state"];
  p?: unknown;
}

/** A push of type `T` as it arrived (batched pushes arrive one by one). */
export interface PushFrame<T extends PushType = PushType> {
  t: T;
  i?: string;
  p: Pushes[T];
}

export type AnyPush = { [T in PushType]: PushFrame<T> }[PushType];
/** A push published to a topic of `pattern`. */
export type TopicPush<P extends TopicPattern> = { [T in Topics[P] & PushType]: PushFrame<T> }[Topics[P] & PushType];

/** What a failed `call` rejects with: `code` is one of the codes its type can produce. */
export class RequestError<T extends RequestType = RequestType> extends Error {
  readonly t: T;
  readonly i: string | null;
  readonly code: ErrorCode<T>;
  readonly payload: EnvelopeErrorPayload<ErrorCode<T>>;

  constructor(t: T, error: EnvelopeError) {
    super(error.message);
    this.name = "RequestError";
    this.t = t;
    this.i = error.i;
    this.code = error.code as ErrorCode<T>;
    const payload: unknown = { ...error.payload, code: this.code, message: error.message };
    this.payload = payload as EnvelopeErrorPayload<ErrorCode<T>>;
  }
}

/** The `f` payload, with `code` narrowed to `C`. */
export type EnvelopeErrorPayload<C extends string = string> = Omit<ErrorPayload, "code"> & { code: C };

/** Did `call(t, ...)` reject with this? Narrows `error.code` to the codes of `t`. */
export function isRequestError<T extends RequestType>(error: unknown, t: T): error is RequestError<T> {
  return error instanceof RequestError && error.t === t;
}

export interface CallOptions<T extends RequestType> {
  /** ms to wait for the terminal reply (default: the client's). */
  timeout?: number;
  /** The trace id (default: a new one). */
  i?: string;
  /** Each progress update (`r` with a payload). */
  onProgress?: (progress: Progress<T>, frame: ReplyFrame<T>) => void;
  /** Every reply, in order: `a`, `q`, `r`..., then `s` or `f`. */
  onState?: (state: Requests[T]["state"], frame: ReplyFrame<T>) => void;
}

/** The promise of a call, with the request's trace id. */
export type Call<T extends RequestType> = Promise<Reply<T>> & { readonly i: string };

type CallArgs<T extends RequestType> = Requests[T]["payloadOptional"] extends true
  ? [payload?: Payload<T> | null, options?: CallOptions<T>]
  : [payload: Payload<T>, options?: CallOptions<T>];

type SendArgs<T extends RequestType> = Requests[T]["payloadOptional"] extends true
  ? [payload?: Payload<T> | null]
  : [payload: Payload<T>];

function isObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === "object" && value !== null;
}

/** `EnvelopeClient` with every message type of the contract checked. */
export class ContractClient {
  readonly raw: EnvelopeClient;

  constructor(raw: EnvelopeClient) {
    this.raw = raw;
  }

  connect(): Promise<ContractClient> {
    return this.raw.connect().then(() => this);
  }

  close(code?: number, reason?: string): void {
    this.raw.close(code, reason);
  }

  /** Send `t`; resolves with its `s` payload, rejects with a `RequestError<t>`. */
  call<T extends CallType>(t: T, ...args: CallArgs<T>): Call<T> {
    const [payload, options] = args;
    const { timeout, i, onProgress, onState } = options ?? {};
    const pending = this.raw.request(t, payload ?? null, {
      timeout,
      i,
      onState: (state, p, frame) => {
        const reply = frame as ReplyFrame<T>;
        if (onState) onState(state as Requests[T]["state"], reply);
        if (state === "r" && p !== null && p !== undefined && onProgress) {
          onProgress(p as Progress<T>, reply);
        }
      },
    });
    const typed = pending.then(
      (reply) => reply as Reply<T>,
      (error: unknown) => {
        throw error instanceof EnvelopeError ? new RequestError(t, error) : error;
      },
    );
    return Object.assign(typed, { i: pending.i });
  }

  /** Send a type declared `reply=False` (nothing waits for an answer); returns its `i`. */
  send<T extends SendType>(t: T, ...args: SendArgs<T>): string {
    return this.raw.send(t, args[0] ?? null);
  }

  /** `fn(payload, frame)` for every push of type `t` (batched ones too); returns an unsubscribe. */
  on<T extends PushType>(t: T, fn: (payload: Pushes[T], frame: PushFrame<T>) => void): () => void {
    const deliver = (p: unknown, frame: Frame): void => {
      const push = { t, p: p as Pushes[T], ...(frame.i ? { i: frame.i } : {}) };
      fn(push.p, push);
    };
    const single = this.raw.on(t, deliver);
    const batched = this.raw.on(__BATCH__, (p) => {
      if (!isObject(p) || p.t !== t || !Array.isArray(p.items)) return;
      for (const item of p.items) {
        if (isObject(item)) deliver(item.p, { t, i: typeof item.i === "string" ? item.i : undefined });
      }
    });
    return () => {
      single();
      batched();
    };
  }

  /** `fn(push)` for every push a topic of `pattern` publishes; returns an unsubscribe. */
  onTopic<P extends TopicPattern>(pattern: P, fn: (push: TopicPush<P>) => void): () => void {
    const published = TOPIC_PUSHES[pattern];
    const stops = published.map((t) => this.on(t, (_p, frame) => fn(frame as TopicPush<P>)));
    return () => stops.forEach((stop) => stop());
  }

  /** Subscribe to `topic` now and after every reconnect. */
  subscribe(topic: TopicName): Promise<unknown> {
    return this.raw.subscribe(topic).catch((error: unknown) => {
      throw error instanceof EnvelopeError ? new RequestError("topic.subscribe" as RequestType, error) : error;
    });
  }

  /** Stop wanting `topic`. */
  leave(topic: TopicName): Promise<unknown> {
    return this.raw.leave(topic);
  }
}

/** A `ContractClient` over a new `EnvelopeClient`, connecting at once. */
export function connect(url: string, options: ClientOptions = {}): ContractClient {
  const client = new ContractClient(new EnvelopeClient(url, options));
  void client.connect();
  return client;
}
