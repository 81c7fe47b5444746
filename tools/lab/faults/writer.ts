/**
 * Continuous writer and acknowledged-write checker for etcd fault-injection tests.
 *
 * The writer is one persistent `etcd3` client (connected to every endpoint, like a real application) that issues
 * sequential puts of unique keys and records, per put, whether it was acknowledged (`ok`), definitely not applied
 * (`failed`), or indeterminate (`timeout`). The checker then reads every member separately and asserts that no
 * acknowledged write was lost (security-and-faults.md §2-3: etcd robustness / Jepsen "set" style check).
 *
 * Why the client's fault handling is replaced: `etcd3@1.1.2` wraps every call in a cockatiel global retry policy
 * (3 attempts on "recoverable" errors, which include DEADLINE_EXCEEDED and UNAVAILABLE) and a per-host circuit
 * breaker. A silent client-side retry of a put turns one logical write into several and hides failures; that is what
 * the Jepsen 3.5.x "lost update" reports were traced to (etcd #18424). Here both policies are a single-attempt
 * pass-through policy, gRPC's own retries are off (`grpc.enable_retries: 0`), and every call carries a gRPC deadline.
 */
import * as fs from "fs";
import { randomBytes } from "crypto";
import { performance } from "perf_hooks";
import {
    ClientClosedError,
    Etcd3,
    EtcdPermissionDeniedError,
    GRPCInvalidArgumentError,
    GRPCUnauthenticatedError,
    GRPCUnavailableError,
    IHashKVResponse,
    IOptions,
    IStatusResponse,
    Range,
} from "etcd3";

/** Client certificate material for mutual TLS: paths to PEM files. */
export interface ClientTls {
    /** CA bundle that signed the members' server certificates. */
    cacert: string;
    /** Client certificate (chain). */
    cert: string;
    /** Client private key. */
    key: string;
}

/** Options of a {@link ContinuousWriter}. */
export interface WriterOptions {
    /** Client URLs (`https://…` or `http://…`); all of them go into one client. */
    endpoints: string[];
    /** Mutual-TLS material; omit for plain HTTP endpoints. */
    tls?: ClientTls;
    /** Keys are `${prefix}${seq padded}`; every key is written exactly once, with a value unique to this run. */
    prefix: string;
    /** Per-put deadline; a put that has not answered by then is recorded as `timeout` (indeterminate). */
    opTimeoutMs: number;
    /** Sleep between puts (default 0). */
    pauseMs?: number;
    /** Hard bound on the number of puts (default 100000). */
    maxOps?: number;
    /** Hard bound on how long the writer keeps writing if nobody calls stop() (default 600000 ms). */
    maxDurationMs?: number;
    /**
     * Send a put again, at once and within its deadline, when the attempt is proven not to have left the client
     * (no connection established to the member the client picked): what a client configured with every member
     * (kube-apiserver's `--etcd-servers`) does when one member is down. At most this many extra attempts per
     * put (default 0: every attempt counts). Safe: an unsent put cannot have been applied.
     */
    retryUnsent?: number;
}

/**
 * Classification of one put:
 * - `ok`: acknowledged by the server; must survive every fault.
 * - `failed`: definitely not applied (never sent, or rejected by validation before being proposed).
 * - `timeout`: indeterminate; it may or may not have been applied (deadline passed, connection dropped, unknown error).
 */
export type Outcome = "ok" | "failed" | "timeout";

/** An answer that arrived after the put had already been classified (kept for diagnosis, never re-classified). */
export interface LateAnswer {
    /** Whether the late answer was a success or an error. */
    outcome: "ok" | "error";
    /** When it arrived ({@link nowMs} clock). */
    atMs: number;
    /** Revision of a late success. */
    revision?: string;
    /** Message of a late error. */
    error?: string;
}

/** One logical write, classified exactly once. */
export interface WriteRecord {
    /** Sequence number (0-based, in issue order). */
    seq: number;
    /** Key written. */
    key: string;
    /** Value written (unique per key). */
    value: string;
    /** Classification; see {@link Outcome}. */
    outcome: Outcome;
    /** When the put was issued ({@link nowMs} clock). */
    startMs: number;
    /** When the put was classified ({@link nowMs} clock). */
    endMs: number;
    /** Store revision from the put response header (acknowledged writes only). */
    revision?: string;
    /** Error message for `failed`/`timeout`. */
    error?: string;
    /** An answer that arrived after the put was classified. */
    late?: LateAnswer;
}

/** Summary of a writer run. */
export interface WriterReport {
    /** Every put, in issue order. */
    records: WriteRecord[];
    /** Number of `ok` records. */
    acknowledged: number;
    /** Number of `timeout` records. */
    indeterminate: number;
    /** Number of `failed` records. */
    failed: number;
    /** Largest interval between the end times of two consecutive acknowledged writes, including start→first ack (start→stop if none). */
    largestGapMs: number;
    /** When that interval ended: the end time of the acknowledged write that closed it (stop if none). */
    largestGapEndMs: number;
    /** The acknowledgement gap containing time `tMs` ({@link nowMs} clock); after the last ack, the gap runs to stop. */
    gapAround?(tMs: number): number;
    /**
     * The largest acknowledgement gap that ends after `tMs` (the open gap from the last ack to stop included): the
     * client-visible write pause caused by a fault injected at `tMs`, even if an in-flight write was acked just after it.
     */
    largestGapSince?(tMs: number): number;
    /** Revisions of acknowledged writes strictly increase in issue order. */
    revisionsMonotonic: boolean;
    /** When the writer started / stopped ({@link nowMs} clock). */
    startMs: number;
    /** See {@link WriterReport.startMs}. */
    stopMs: number;
    /** RPC attempts that went through the client's fault-handling policy; equals `records.length` when the client never retried. */
    rpcAttempts: number;
}

/** Result of checking one member. */
export interface MemberCheck {
    /** Client URL of the member. */
    endpoint: string;
    /** Acknowledged keys present with the right value. */
    present: number;
    /** Acknowledged keys absent on this member. */
    missing: string[];
    /** Acknowledged keys holding a different value on this member. */
    wrongValue: string[];
    /** Keys found under the prefix on this member. */
    keysUnderPrefix: number;
    /** Revision the member's read was served at. */
    revision?: string;
    /** Last `endpoint hashkv` answer before the reads: revision and hash, or why it failed. */
    hashRevision?: string;
    /** See {@link MemberCheck.hashRevision}. */
    hash?: string;
    /** See {@link MemberCheck.hashRevision}. */
    hashError?: string;
    /** Why the member could not be read (then every acknowledged key counts as missing). */
    error?: string;
}

/** Result of {@link verifyAcknowledged}. */
export interface VerifyResult {
    /** One entry per endpoint, in the order given. */
    perMember: MemberCheck[];
    /** Acknowledged keys missing or wrong on any member (sorted). */
    lost: string[];
    /** Keys under the prefix that no write attempted, or that hold a value no write attempted (sorted). */
    unexpected: string[];
    /** Indeterminate (`timeout`) writes whose key exists on at least one member. */
    indeterminatePresent: number;
    /** Keys of `failed` writes that exist anyway: the writer misclassified them (sorted). */
    failedPresent: string[];
    /** Whether all members reported the same revision and KV hash before the reads. */
    converged: boolean;
}

/** A leader as reported by the Maintenance status API. */
export interface LeaderInfo {
    /** Client URL of the leader. */
    endpoint: string;
    /** Member id (decimal string, as etcd's JSON output prints it). */
    memberId: string;
    /** Raft term reported by the leader. */
    term?: string;
}

/** Monotonic clock aligned to the Unix epoch, in ms. Every time in this module uses it. */
export function nowMs(): number {
    return performance.timeOrigin + performance.now();
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

function errorText(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
}

type FaultPolicy = NonNullable<NonNullable<IOptions["faultHandling"]>["global"]>;

/** Subscribing to a policy event of the single-attempt policy: nothing is ever emitted. */
function noEvent(): { dispose(): void } {
    return { dispose: () => undefined };
}

/** A cockatiel-compatible policy that runs the call exactly once: no retry, no circuit breaker, no fallback. */
class SingleAttemptPolicy implements FaultPolicy {
    declare readonly _altReturn: never;
    readonly onSuccess: FaultPolicy["onSuccess"] = noEvent;
    readonly onFailure: FaultPolicy["onFailure"] = noEvent;
    private readonly signal = new AbortController().signal;

    constructor(private readonly onAttempt: () => void = () => undefined) {}

    async execute<T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> {
        this.onAttempt();
        return await fn({ signal: this.signal });
    }
}

/**
 * `Etcd3` plus a working HashKV call: etcd3@1.1.2's `maintenance.hashKV()` asks gRPC for a method named `hashKV`,
 * but the generated stub only has `HashKV`/`hashKv`, so it always throws "client[method] is not a function".
 */
class LabEtcd3 extends Etcd3 {
    /** Maintenance.HashKV at `revision` (0 = current). */
    hashKv(revision: string | number, options: { deadline: number }): Promise<IHashKVResponse> {
        return this.pool.exec<IHashKVResponse>("Maintenance", "HashKV", { revision }, options);
    }
}

/**
 * One `etcd3` client with client-side retries and circuit breaking disabled: `faultHandling.global` and
 * `faultHandling.host` are single-attempt policies and gRPC retries are off. `onAttempt` is called once per RPC attempt.
 */
function makeClient(endpoints: string[], tls: ClientTls | undefined, onAttempt?: () => void): LabEtcd3 {
    const policy = new SingleAttemptPolicy(onAttempt);
    return new LabEtcd3({
        hosts: endpoints,
        credentials: tls
            ? { rootCertificate: fs.readFileSync(tls.cacert), certChain: fs.readFileSync(tls.cert), privateKey: fs.readFileSync(tls.key) }
            : undefined,
        faultHandling: { global: new SingleAttemptPolicy(), host: () => policy },
        grpcOptions: {
            "grpc.enable_retries": 0,
            "grpc.initial_reconnect_backoff_ms": 100,
            "grpc.max_reconnect_backoff_ms": 1000,
        },
    });
}

/**
 * Classifies a put error. Only errors that prove the write was not applied are `failed`: the call never left the
 * client (no connection, closed client) or the server rejected it before proposing it (invalid argument, auth).
 * Everything else (deadline, dropped connection, `etcdserver: request timed out`, unknown) is indeterminate.
 */
export function classifyPutError(err: unknown): Outcome {
    if (err instanceof ClientClosedError) return "failed";
    if (isUnsent(err)) return "failed";
    if (err instanceof GRPCInvalidArgumentError || err instanceof GRPCUnauthenticatedError || err instanceof EtcdPermissionDeniedError) return "failed";
    return "timeout";
}

/** Builds a report from records (exported for tests and for merging runs). */
export function buildReport(records: WriteRecord[], startMs: number, stopMs: number, rpcAttempts = records.length): WriterReport {
    const acks = records.filter((r) => r.outcome === "ok");
    const ackEnds = acks.map((r) => r.endMs).sort((a, b) => a - b);
    let largestGapMs = ackEnds.length === 0 ? stopMs - startMs : ackEnds[0] - startMs;
    let largestGapEndMs = ackEnds.length === 0 ? stopMs : ackEnds[0];
    for (let i = 1; i < ackEnds.length; i++) {
        if (ackEnds[i] - ackEnds[i - 1] > largestGapMs) [largestGapMs, largestGapEndMs] = [ackEnds[i] - ackEnds[i - 1], ackEnds[i]];
    }
    let revisionsMonotonic = true;
    let previous: bigint | undefined;
    for (const r of acks) {
        if (r.revision === undefined) {
            revisionsMonotonic = false;
            continue;
        }
        const rev = BigInt(r.revision);
        if (previous !== undefined && rev <= previous) revisionsMonotonic = false;
        previous = rev;
    }
    const gapAround = (tMs: number): number => {
        let from = startMs;
        for (const end of ackEnds) {
            if (tMs < end) return end - from;
            from = end;
        }
        return stopMs - from;
    };
    const largestGapSince = (tMs: number): number => {
        let largest = 0;
        let from = startMs;
        for (const end of [...ackEnds, stopMs]) {
            if (end > tMs) largest = Math.max(largest, end - from);
            from = end;
        }
        return largest;
    };
    return {
        records,
        acknowledged: acks.length,
        indeterminate: records.filter((r) => r.outcome === "timeout").length,
        failed: records.filter((r) => r.outcome === "failed").length,
        largestGapMs,
        largestGapEndMs,
        gapAround,
        largestGapSince,
        revisionsMonotonic,
        startMs,
        stopMs,
        rpcAttempts,
    };
}

/** Digits of a key's sequence number: at least 6, enough for `maxOps` puts (shared with the Go writer). */
export function keyWidth(maxOps: number): number {
    return Math.max(6, String(Math.max(0, maxOps - 1)).length);
}

/** Extra time after the gRPC deadline before the writer's own timer classifies a put as `timeout` anyway. */
const BACKSTOP_GRACE_MS = 200;

/**
 * Sequential writer of unique keys through one persistent client. Each put is classified exactly once; an answer that
 * arrives after classification is stored in `late` only.
 */
export class ContinuousWriter {
    private readonly opts: Required<Omit<WriterOptions, "tls">> & { tls?: ClientTls };
    private readonly runId = randomBytes(4).toString("hex");
    private readonly width: number;
    private readonly records: WriteRecord[] = [];
    private client?: Etcd3;
    private loop?: Promise<void>;
    private stopping = false;
    private wake?: () => void;
    private abortCurrent?: (why: string) => void;
    private startMs = 0;
    private acked = 0;
    private attempts = 0;
    private report?: Promise<WriterReport>;

    /** Validates options; nothing is connected until {@link ContinuousWriter.start}. */
    constructor(opts: WriterOptions) {
        if (opts.endpoints.length === 0) throw new Error("ContinuousWriter: no endpoints");
        if (!(opts.opTimeoutMs > 0)) throw new Error("ContinuousWriter: opTimeoutMs must be > 0");
        this.opts = {
            endpoints: [...opts.endpoints],
            tls: opts.tls,
            prefix: opts.prefix,
            opTimeoutMs: opts.opTimeoutMs,
            pauseMs: opts.pauseMs ?? 0,
            maxOps: opts.maxOps ?? 100_000,
            maxDurationMs: opts.maxDurationMs ?? 600_000,
            retryUnsent: opts.retryUnsent ?? 0,
        };
        this.width = keyWidth(this.opts.maxOps);
    }

    /** Number of acknowledged puts so far. */
    get acknowledgedSoFar(): number {
        return this.acked;
    }

    /** Number of puts issued so far (any outcome, including the one in flight). */
    get issuedSoFar(): number {
        return this.records.length;
    }

    /** Key that the put with sequence number `seq` writes. */
    keyFor(seq: number): string {
        return `${this.opts.prefix}${String(seq).padStart(this.width, "0")}`;
    }

    /** Connects one client to all endpoints and starts writing in the background. */
    start(): void {
        if (this.loop) throw new Error("ContinuousWriter: already started");
        this.client = makeClient(this.opts.endpoints, this.opts.tls, () => this.attempts++);
        this.startMs = nowMs();
        this.loop = this.run();
    }

    /**
     * Stops writing, waits (at most opTimeoutMs + ~0.8 s) for the put in flight, closes the client and returns the
     * report. A put still in flight at that point stays `timeout`. Calling it again returns the same report.
     */
    stop(): Promise<WriterReport> {
        if (!this.report) this.report = this.doStop();
        return this.report;
    }

    private async doStop(): Promise<WriterReport> {
        if (!this.loop || !this.client) throw new Error("ContinuousWriter: stop() before start()");
        this.stopping = true;
        this.wake?.();
        let timer: NodeJS.Timeout | undefined;
        const finished = await Promise.race([
            this.loop.then(() => true),
            new Promise<boolean>((resolve) => {
                timer = setTimeout(() => resolve(false), this.opts.opTimeoutMs + BACKSTOP_GRACE_MS + 600);
            }),
        ]);
        clearTimeout(timer);
        if (!finished) this.abortCurrent?.("writer stopped while the put was in flight");
        const stopMs = nowMs();
        this.client.close();
        return buildReport(this.records, this.startMs, stopMs, this.attempts);
    }

    private async run(): Promise<void> {
        const until = this.startMs + this.opts.maxDurationMs;
        for (let seq = 0; seq < this.opts.maxOps && !this.stopping && nowMs() < until; seq++) {
            await this.putOnce(seq);
            if (this.opts.pauseMs > 0 && !this.stopping) await this.interruptibleSleep(this.opts.pauseMs);
        }
    }

    private interruptibleSleep(ms: number): Promise<void> {
        return new Promise<void>((resolve) => {
            const timer = setTimeout(done, ms);
            function done(): void {
                clearTimeout(timer);
                resolve();
            }
            this.wake = done;
        }).then(() => {
            this.wake = undefined;
        });
    }

    private putOnce(seq: number): Promise<void> {
        const client = this.client;
        if (!client) return Promise.resolve();
        const key = this.keyFor(seq);
        const record: WriteRecord = { seq, key, value: `${this.runId}:${seq}`, outcome: "timeout", startMs: nowMs(), endMs: Number.NaN };
        this.records.push(record);
        return new Promise<void>((resolve) => {
            let settled = false;
            const settle = (outcome: Outcome, detail: { revision?: string; error?: string }): void => {
                if (settled) return;
                settled = true;
                clearTimeout(backstop);
                this.abortCurrent = undefined;
                record.outcome = outcome;
                record.endMs = nowMs();
                if (detail.revision !== undefined) record.revision = detail.revision;
                if (detail.error !== undefined) record.error = detail.error;
                if (outcome === "ok") this.acked++;
                resolve();
            };
            const backstop = setTimeout(
                () => settle("timeout", { error: `no answer within ${this.opts.opTimeoutMs + BACKSTOP_GRACE_MS} ms` }),
                this.opts.opTimeoutMs + BACKSTOP_GRACE_MS,
            );
            this.abortCurrent = (why) => settle("timeout", { error: why });
            const deadline = Date.now() + this.opts.opTimeoutMs;
            const attempt = (left: number): void => {
                // Proven unsent, with time and attempts left: send it again (the client picks a member again).
                const failed = (err: unknown): void => {
                    if (settled) record.late = { outcome: "error", atMs: nowMs(), error: errorText(err) };
                    else if (left > 0 && isUnsent(err) && Date.now() < deadline - 50) setTimeout(() => attempt(left - 1), 10);
                    else settle(classifyPutError(err), { error: errorText(err) });
                };
                let call: Promise<{ header: { revision: string } }>;
                try {
                    call = client.put(key).value(record.value).options({ deadline }).exec();
                } catch (err) {
                    failed(err);
                    return;
                }
                call.then((res) => {
                    if (settled) record.late = { outcome: "ok", atMs: nowMs(), revision: res.header.revision };
                    else settle("ok", { revision: res.header.revision });
                }, failed);
            };
            attempt(this.opts.retryUnsent);
        });
    }
}

/** True for an error that proves the put never left the client (no connection to the member it picked). */
function isUnsent(err: unknown): boolean {
    return err instanceof GRPCUnavailableError && /No connection established/.test(err.message);
}

/** Runs `fn` on one client per endpoint (each client talks to exactly one member), closing them afterwards. */
async function withMemberClients<T>(endpoints: string[], tls: ClientTls | undefined, fn: (clients: LabEtcd3[]) => Promise<T>): Promise<T> {
    const clients = endpoints.map((ep) => makeClient([ep], tls));
    try {
        return await fn(clients);
    } finally {
        for (const c of clients) c.close();
    }
}

async function statusOf(client: Etcd3, timeoutMs: number): Promise<IStatusResponse | undefined> {
    try {
        return await client.maintenance.status({ deadline: Date.now() + timeoutMs });
    } catch {
        return undefined;
    }
}

interface HashState {
    revision?: string;
    hash?: string;
    error?: string;
}

async function hashOf(client: LabEtcd3, timeoutMs: number): Promise<HashState> {
    try {
        const res = await client.hashKv(0, { deadline: Date.now() + timeoutMs });
        return { revision: res.header.revision, hash: res.hash };
    } catch (err) {
        return { error: errorText(err) };
    }
}

const READ_PAGE = 1000;
const MAX_PAGES = 10_000;

/** All key/values under `prefix` on one member, with serializable (member-local) reads, paged and pinned to one revision. */
async function readPrefix(client: Etcd3, prefix: string, timeoutMs: number): Promise<{ kvs: Map<string, string>; revision: string }> {
    const kvs = new Map<string, string>();
    const end = Range.prefix(prefix).end;
    const deadline = nowMs() + timeoutMs;
    let start: Buffer = Buffer.from(prefix);
    let revision: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
        const left = deadline - nowMs();
        if (left <= 0) throw new Error(`reading ${prefix}* took longer than ${timeoutMs} ms`);
        let query = client.getAll().inRange(new Range(start, end)).serializable(true).limit(READ_PAGE).options({ deadline: Date.now() + left });
        if (revision !== undefined) query = query.revision(revision);
        const res = await query.exec();
        revision ??= res.header.revision;
        for (const kv of res.kvs) kvs.set(kv.key.toString(), kv.value.toString());
        if (!res.more || res.kvs.length === 0) return { kvs, revision };
        start = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    }
    throw new Error(`reading ${prefix}* needed more than ${MAX_PAGES} pages`);
}

/**
 * Reads every key under the prefix from EACH member separately (one client per endpoint, serializable reads so a member
 * answers from its own store), after waiting (bounded by `timeoutMs`, default 10 s) until every member reports the same
 * revision and KV hash (`endpoint hashkv`). A member that cannot be read counts every acknowledged key as missing.
 */
export async function verifyAcknowledged(
    report: WriterReport,
    endpoints: string[],
    tls: ClientTls | undefined,
    prefix: string,
    opts?: { timeoutMs?: number; readTimeoutMs?: number },
): Promise<VerifyResult> {
    const timeoutMs = opts?.timeoutMs ?? 10_000;
    const readTimeoutMs = opts?.readTimeoutMs ?? 10_000;
    return withMemberClients(endpoints, tls, async (clients) => {
        const deadline = nowMs() + timeoutMs;
        let converged = false;
        let states: HashState[] = [];
        for (let i = 0; i < 10_000 && !converged; i++) {
            states = await Promise.all(clients.map((c) => hashOf(c, Math.min(1000, Math.max(50, deadline - nowMs())))));
            converged = states.every((s) => s.hash !== undefined && s.revision === states[0].revision && s.hash === states[0].hash);
            if (converged || nowMs() >= deadline) break;
            await sleep(100);
        }

        const attempted = new Map(report.records.map((r) => [r.key, r]));
        const acked = report.records.filter((r) => r.outcome === "ok");
        const lost = new Set<string>();
        const unexpected = new Set<string>();
        const indeterminateSeen = new Set<string>();
        const failedPresent = new Set<string>();
        const perMember: MemberCheck[] = [];
        for (let i = 0; i < clients.length; i++) {
            const check: MemberCheck = { endpoint: endpoints[i], present: 0, missing: [], wrongValue: [], keysUnderPrefix: 0 };
            const st = states[i];
            if (st?.revision !== undefined) check.hashRevision = st.revision;
            if (st?.hash !== undefined) check.hash = st.hash;
            if (st?.error !== undefined) check.hashError = st.error;
            let kvs = new Map<string, string>();
            try {
                const read = await readPrefix(clients[i], prefix, readTimeoutMs);
                kvs = read.kvs;
                check.revision = read.revision;
            } catch (err) {
                check.error = errorText(err);
            }
            check.keysUnderPrefix = kvs.size;
            for (const r of acked) {
                const v = kvs.get(r.key);
                if (v === undefined) check.missing.push(r.key);
                else if (v !== r.value) check.wrongValue.push(r.key);
                else check.present++;
            }
            for (const k of [...check.missing, ...check.wrongValue]) lost.add(k);
            for (const [k, v] of kvs) {
                const r = attempted.get(k);
                if (!r || r.value !== v) {
                    if (!r || r.outcome !== "ok") unexpected.add(k);
                    continue;
                }
                if (r.outcome === "timeout") indeterminateSeen.add(k);
                if (r.outcome === "failed") failedPresent.add(k);
            }
            perMember.push(check);
        }
        return {
            perMember,
            lost: [...lost].sort(),
            unexpected: [...unexpected].sort(),
            indeterminatePresent: indeterminateSeen.size,
            failedPresent: [...failedPresent].sort(),
            converged,
        };
    });
}

/** The self-reported leader with the highest term among answered statuses. */
function selfLeader(endpoints: string[], statuses: (IStatusResponse | undefined)[]): LeaderInfo | undefined {
    let best: LeaderInfo | undefined;
    statuses.forEach((s, i) => {
        if (!s || s.leader === "0" || s.header.member_id !== s.leader) return;
        if (!best || BigInt(s.raftTerm) > BigInt(best.term ?? "0")) best = { endpoint: endpoints[i], memberId: s.leader, term: s.raftTerm };
    });
    return best;
}

/**
 * Leader discovery via the Maintenance status API on each endpoint: returns the endpoint whose member id equals the
 * leader it reports (the highest term wins if several claim it), its member id and term. Throws after `timeoutMs`
 * (default 5 s) if none.
 */
export async function findLeader(endpoints: string[], tls: ClientTls | undefined, opts?: { timeoutMs?: number }): Promise<LeaderInfo> {
    const timeoutMs = opts?.timeoutMs ?? 5000;
    return withMemberClients(endpoints, tls, async (clients) => {
        const deadline = nowMs() + timeoutMs;
        let last: string[] = [];
        for (let i = 0; i < 100_000; i++) {
            const statuses = await Promise.all(clients.map((c) => statusOf(c, Math.min(500, Math.max(50, deadline - nowMs())))));
            const leader = selfLeader(endpoints, statuses);
            if (leader) return leader;
            last = statuses.map((s, j) => `${endpoints[j]}=${s ? `member ${s.header.member_id} leader ${s.leader}` : "no answer"}`);
            if (nowMs() >= deadline) break;
            await sleep(50);
        }
        throw new Error(`findLeader: no leader after ${timeoutMs} ms (${last.join(", ")})`);
    });
}

/**
 * Polls (every ~20 ms, at most `timeoutMs`) until a majority of `endpoints` report the same leader, that leader differs
 * from `previousMemberId` (if given) and confirms it itself; returns it and the ms elapsed since the call.
 */
export async function waitForNewLeader(
    endpoints: string[],
    tls: ClientTls | undefined,
    previousMemberId: string | undefined,
    timeoutMs: number,
): Promise<{ endpoint: string; memberId: string; elapsedMs: number }> {
    const t0 = nowMs();
    const majority = Math.floor(endpoints.length / 2) + 1;
    return withMemberClients(endpoints, tls, async (clients) => {
        let last: string[] = [];
        for (let i = 0; i < 100_000; i++) {
            const statuses = await Promise.all(clients.map((c) => statusOf(c, Math.min(300, Math.max(50, t0 + timeoutMs - nowMs())))));
            const votes = new Map<string, number>();
            for (const s of statuses) if (s && s.leader !== "0") votes.set(s.leader, (votes.get(s.leader) ?? 0) + 1);
            for (const [id, n] of votes) {
                if (n < majority || id === previousMemberId) continue;
                const at = statuses.findIndex((s) => s?.header.member_id === id && s.leader === id);
                if (at >= 0) return { endpoint: endpoints[at], memberId: id, elapsedMs: nowMs() - t0 };
            }
            last = statuses.map((s, j) => `${endpoints[j]}=${s ? `leader ${s.leader}` : "no answer"}`);
            if (nowMs() - t0 >= timeoutMs) break;
            await sleep(20);
        }
        throw new Error(`waitForNewLeader: no new leader (previous ${previousMemberId ?? "none"}) after ${timeoutMs} ms (${last.join(", ")})`);
    });
}

function token(v: number | string): string {
    const s = typeof v === "number" ? String(Math.round(v)) : v;
    return s.replace(/\s+/g, "_") || "-";
}

/**
 * One line of figures: `scenario=<name> acknowledged=… indeterminate=… failed=… lost=… largest_gap_ms=… ops=…
 * revisions_monotonic=…` followed by `extra` as `key=value` (numbers rounded; `lost` from extra, else `unchecked`).
 */
export function formatFigures(name: string, r: WriterReport, extra?: Record<string, number | string>): string {
    const rest = { ...(extra ?? {}) };
    const lost = rest.lost ?? "unchecked";
    delete rest.lost;
    const fields: [string, number | string][] = [
        ["scenario", name],
        ["acknowledged", r.acknowledged],
        ["indeterminate", r.indeterminate],
        ["failed", r.failed],
        ["lost", lost],
        ["largest_gap_ms", r.largestGapMs],
        ["ops", r.records.length],
        ["revisions_monotonic", String(r.revisionsMonotonic)],
        ...Object.entries(rest),
    ];
    return fields.map(([k, v]) => `${token(k)}=${token(v)}`).join(" ");
}
