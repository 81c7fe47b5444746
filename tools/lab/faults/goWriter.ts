/**
 * The continuous writer on etcd's own Go client (tools/lab/gowriter, built by `tools/etcd-build.sh writer`):
 * the client kube-apiserver uses, with its own retries as they are, one long-lived client with every endpoint.
 * Same accounting as {@link ContinuousWriter} (every put `ok`, `failed` or `timeout`, classified once; the same
 * {@link WriterReport}), plus the leaders it saw: the writer polls every endpoint's Status and reports each
 * change of leader or term.
 *
 * The process is this module's child, ended by closing its stdin (it finishes the put in flight) and, past a
 * bound, by SIGKILL to its own PID. Its records go to a file in a temp dir (removed on stop), never through a
 * pipe: see start().
 */
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { etcdBuild } from "../etcdBuild";
import { buildReport, keyWidth, WriteRecord, WriterOptions, WriterReport } from "./writer";

/** A leader the writer saw (a new one, or the same one in a new term). */
export interface LeaderEvent {
    /** When it was seen (epoch ms, the same clock as the records). */
    atMs: number;
    /** Member ID, hex. */
    id: string;
    /** Raft term. */
    term: number;
    /** The leader's client URL, when it is one of the writer's endpoints. */
    endpoint?: string;
}

/** A writer report with the leaders seen while writing. */
export interface GoWriterReport extends WriterReport {
    /** Every leader seen, in order; the first is the leader when writing started. */
    leaders: LeaderEvent[];
    /** Changes of leader or term after the first one seen (elections, planned or not). */
    leaderChanges: number;
    /** Why the writer stopped (`stopped`, `max-ops`, `max-duration`, or `killed`). */
    reason: string;
}

/** The Node writer's options but `retryUnsent` (etcd's client decides what it resends), plus the leader poll. */
export interface GoWriterOptions extends Omit<WriterOptions, "retryUnsent"> {
    /** How often the writer asks every endpoint for the leader (default 100 ms; 0: never). */
    leaderPollMs?: number;
}

/** The writer's binary (built once, cached): fails naming the command that builds it. */
export function goWriterBinary(): string {
    return etcdBuild("writer", 2)[1];
}

export class GoWriter {
    private proc?: ChildProcess;
    private readonly records: WriteRecord[] = [];
    private readonly leaders: LeaderEvent[] = [];
    private finished?: { startMs: number; stopMs: number; reason: string };
    private exited?: Promise<void>;
    private stderr = "";
    private report?: Promise<GoWriterReport>;
    private startedAt = 0;
    private dir?: string;
    private outFile?: string;
    private offset = 0;
    private partial = "";
    private readonly width: number;

    constructor(private readonly opts: GoWriterOptions) {
        if (opts.endpoints.length === 0) throw new Error("GoWriter: no endpoints");
        if (!(opts.opTimeoutMs > 0)) throw new Error("GoWriter: opTimeoutMs must be > 0");
        this.width = keyWidth(opts.maxOps ?? 100_000);
    }

    get acknowledgedSoFar(): number {
        this.read();
        return this.records.filter((r) => r.outcome === "ok").length;
    }

    get issuedSoFar(): number {
        this.read();
        return this.records.length;
    }

    /** The leaders seen so far. */
    get leadersSoFar(): readonly LeaderEvent[] {
        this.read();
        return this.leaders;
    }

    /** Reads the lines the writer has added to its file since the last read. */
    private read(): void {
        if (!this.outFile || !fs.existsSync(this.outFile)) return;
        const fd = fs.openSync(this.outFile, "r");
        try {
            const size = fs.fstatSync(fd).size;
            if (size <= this.offset) return;
            const chunk = Buffer.alloc(size - this.offset);
            fs.readSync(fd, chunk, 0, chunk.length, this.offset);
            this.offset = size;
            this.partial += chunk.toString("utf8");
        } finally {
            fs.closeSync(fd);
        }
        let nl: number;
        while ((nl = this.partial.indexOf("\n")) >= 0) {
            this.line(this.partial.slice(0, nl));
            this.partial = this.partial.slice(nl + 1);
        }
    }

    keyFor(seq: number): string {
        return `${this.opts.prefix}${String(seq).padStart(this.width, "0")}`;
    }

    start(binary = goWriterBinary()): void {
        if (this.proc) throw new Error("GoWriter: already started");
        const o = this.opts;
        const args = [
            `-endpoints=${o.endpoints.join(",")}`,
            `-prefix=${o.prefix}`,
            `-op-timeout=${o.opTimeoutMs}ms`,
            `-pause=${o.pauseMs ?? 0}ms`,
            `-max-ops=${o.maxOps ?? 100_000}`,
            `-max-duration=${o.maxDurationMs ?? 600_000}ms`,
            `-width=${this.width}`,
            `-leader-poll=${o.leaderPollMs ?? 100}ms`,
            ...(o.tls ? [`-cacert=${o.tls.cacert}`, `-cert=${o.tls.cert}`, `-key=${o.tls.key}`] : []),
        ];
        // The records go to a file, not a pipe: a pipe this process stopped reading (a synchronous call
        // blocking the event loop) would fill up and stall the writer's puts, a gap that is not etcd's.
        this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-gowriter-"));
        this.outFile = path.join(this.dir, "records.jsonl");
        args.push(`-out=${this.outFile}`);
        this.startedAt = Date.now();
        const proc = spawn(binary, args, { stdio: ["pipe", "ignore", "pipe"] });
        this.proc = proc;
        this.exited = new Promise((resolve) => proc.once("exit", () => resolve()));
        proc.stderr!.setEncoding("utf8");
        proc.stderr!.on("data", (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-4000)));
    }

    private line(text: string): void {
        if (text.trim() === "") return;
        const msg = JSON.parse(text) as { put?: WriteRecord; leader?: LeaderEvent; done?: { startMs: number; stopMs: number; reason: string } };
        if (msg.put) this.records.push(msg.put);
        else if (msg.leader) this.leaders.push(msg.leader);
        else if (msg.done) this.finished = msg.done;
    }

    /**
     * Stops writing (stdin closed: the put in flight finishes), waits at most opTimeoutMs + 3 s, else kills the
     * writer by its PID, and returns the report. Calling it again returns the same report.
     */
    stop(): Promise<GoWriterReport> {
        if (!this.report) this.report = this.doStop();
        return this.report;
    }

    private async doStop(): Promise<GoWriterReport> {
        const proc = this.proc;
        if (!proc || !this.exited) throw new Error("GoWriter: stop() before start()");
        proc.stdin!.end("stop\n");
        let timer: NodeJS.Timeout | undefined;
        const inTime = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.opts.opTimeoutMs + 3000)))]);
        clearTimeout(timer);
        if (!inTime && proc.pid !== undefined) {
            process.kill(proc.pid, "SIGKILL");
            await this.exited;
        }
        this.read();
        fs.rmSync(this.dir!, { recursive: true, force: true });
        if (proc.exitCode !== 0 && this.finished === undefined) {
            throw new Error(`the Go writer exited with ${proc.exitCode ?? proc.signalCode}: ${this.stderr.trim()}`);
        }
        const startMs = this.finished?.startMs ?? this.startedAt;
        const stopMs = this.finished?.stopMs ?? Date.now();
        const report = buildReport(this.records, startMs, stopMs);
        return { ...report, leaders: [...this.leaders], leaderChanges: Math.max(0, this.leaders.length - 1), reason: this.finished?.reason ?? "killed" };
    }
}
