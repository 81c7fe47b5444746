/**
 * A lab suite for day-2 tests: its own lab dir and address range, a 3-member lab brought up before the tests
 * and torn down after them, `up` with the suite's defaults, the lab's client files, a continuous writer
 * around a change, and the figures printed at the end. Call it at the top level of a test file, before
 * anything else touches the lab (the lab module reads its dir when it is loaded).
 */
import { spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ClientTls, ContinuousWriter, WriterOptions, WriterReport } from "../../tools/lab/faults/writer";
import { GoWriter, GoWriterReport } from "../../tools/lab/faults/goWriter";
import { StepRecord, urnName } from "../../tools/lab/pulumi";
import { isSecretInput } from "./tokens";
import { inHost, LabHost, preflight, PROJECT_ROOT, readLab } from "../../tools/lab/hosts";

type Lab = typeof import("../../tools/lab/lab");
type UpOptions = NonNullable<Parameters<Lab["up"]>[0]>;

export interface LabSuite {
    lab: Lab;
    /** The suite's lab dir (removed afterwards). */
    dir: string;
    /** Lines printed after the suite (measured figures). */
    figures: string[];
    /** The lab's progress lines of every run so far. */
    log: string[];
    /** The lab's client files (valid after the first `up`). */
    tls(): ClientTls;
    /** The lab hosts. */
    hosts(): LabHost[];
    /** `lab up` in the suite's range, with the suite's defaults under `opts`. */
    up(opts?: UpOptions): ReturnType<Lab["up"]>;
    /** Runs `change` under a continuous writer on `endpoints`; returns the writer's report and the change's result. */
    underWriter<T>(endpoints: string[], prefix: string, change: () => Promise<T>, writer?: Partial<WriterOptions>): Promise<{ report: WriterReport; result: T }>;
    /**
     * The same under the Go writer (etcd's client, as kube-apiserver uses it), whose report also lists the
     * leaders seen.
     */
    underGoWriter<T>(endpoints: string[], prefix: string, change: () => Promise<T>): Promise<{ report: GoWriterReport; result: T }>;
}

/**
 * The writers' pause between puts: about 40 puts a second, so every stretch without an acknowledged write
 * longer than 20 ms shows. A put costs about 5 ms of CPU across three members here (raft, fsync, TLS): a
 * writer without a pause took most of a core from the 2-core machine the lab runs on.
 */
export const WRITER_PAUSE_MS = 20;

export function labSuite(opts: { name: string; prefix: string; defaults?: () => UpOptions; figuresTitle: string }): LabSuite {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `etcd-ha-lab-${opts.name}-`));
    process.env.ETCD_HA_LAB_DIR = dir;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const lab = require("../../tools/lab/lab") as Lab;
    const figures: string[] = [];
    const log: string[] = [];
    let tls: ClientTls | undefined;

    const up = async (o: UpOptions = {}) => {
        const r = await lab.up({ ...(opts.defaults?.() ?? {}), ...o, prefix: opts.prefix, print: (l) => log.push(l) });
        tls = lab.status().client;
        return r;
    };

    beforeAll(async () => {
        preflight();
        await up({ members: 3 });
    }, 240_000);

    afterAll(async () => {
        // Each member's etcd journal (its last 900 kB), kept beside the progress log for a failure's post-mortem.
        for (const h of readLab()?.hosts ?? []) {
            try {
                fs.writeFileSync(path.join(os.tmpdir(), `etcd-ha-lab-${opts.name}-${h.name}.journal`), inHost(h, ["sh", "-c", "journalctl -u etcd --no-pager -o short-iso-precise | tail -c 900000"]));
            } catch {
                // A host that is off has nothing to read.
            }
        }
        // The lab goes whole (hosts, lab dir): no destroy first (tests/lab.test.ts proves the destroy).
        await lab.down({ print: () => undefined, destroy: false }).catch(() => undefined);
        fs.rmSync(dir, { recursive: true, force: true });
        if (figures.length > 0) console.log([opts.figuresTitle, ...figures].join("\n"));
    });

    afterEach(() => {
        // On a failure, the lab's progress lines say which step did what.
        if (log.length > 0) fs.writeFileSync(path.join(os.tmpdir(), `etcd-ha-lab-${opts.name}.log`), log.join("\n"));
    });

    /** Runs `change` while `w` writes; a failed change still ends the writer (it would otherwise write on until its own bound). */
    async function around<R extends WriterReport, T>(w: { start(): void; stop(): Promise<R> }, change: () => Promise<T>): Promise<{ report: R; result: T }> {
        w.start();
        let result: T;
        try {
            result = await change();
        } catch (e) {
            await w.stop();
            throw e;
        }
        await new Promise((r) => setTimeout(r, 500));
        return { report: await w.stop(), result };
    }

    return {
        lab,
        dir,
        figures,
        log,
        tls: () => {
            if (!tls) throw new Error("no lab client files yet: the suite's first up has not run");
            return tls;
        },
        hosts: () => readLab()!.hosts,
        up,
        underWriter<T>(endpoints: string[], prefix: string, change: () => Promise<T>, writer: Partial<WriterOptions> = {}) {
            return around(new ContinuousWriter({ endpoints, tls, prefix, opTimeoutMs: 2000, pauseMs: WRITER_PAUSE_MS, ...writer }), change);
        },
        underGoWriter<T>(endpoints: string[], prefix: string, change: () => Promise<T>) {
            return around(new GoWriter({ endpoints, tls, prefix, opTimeoutMs: 2000, pauseMs: WRITER_PAUSE_MS }), change);
        },
    };
}

/** `npm run lab -- <args>` on the lab in `dir`, in a process of its own, as an operator runs it (bounded). */
export function labCli(dir: string, args: string[], timeoutMs = 300_000): SpawnSyncReturns<string> {
    return spawnSync(path.join(PROJECT_ROOT, "node_modules", ".bin", "ts-node"), ["--transpile-only", path.join(PROJECT_ROOT, "tools", "lab", "cli.ts"), ...args], {
        cwd: PROJECT_ROOT,
        env: { ...process.env, ETCD_HA_LAB_DIR: dir },
        encoding: "utf8",
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
    });
}

/** Distinct errors of failed puts with their counts, for the figures. */
export function failedErrors(r: WriterReport): string {
    const counts = new Map<string, number>();
    for (const rec of r.records) if (rec.outcome === "failed") counts.set(rec.error ?? "?", (counts.get(rec.error ?? "?") ?? 0) + 1);
    return [...counts].map(([e, n]) => `${n}× ${e}`).join("; ") || "none";
}

/** One member's turn to change the live cluster, as its start step (or its leave) reported it. */
export interface Turn {
    member: string;
    beganMs: number;
    endedMs: number;
    /** It led and handed leadership over before its change. */
    handedOver: boolean;
}

/**
 * The turns `members` took in a run (from the run's log lines): each member took exactly one, no two
 * overlapped, and a member that handed leadership over went last. Returned in the order taken.
 */
export function expectRolling(log: string[], members: string[]): Turn[] {
    const turns = members.map((m): Turn => {
        const prefix = `etcd-${m}-start | `;
        const out = log.filter((l) => l.includes(prefix)).map((l) => l.slice(l.indexOf(prefix) + prefix.length));
        const began = out.map((l) => new RegExp(`^${m}: my turn to change the cluster from (\\S+);`).exec(l)?.[1]).filter((t) => t !== undefined);
        const ended = out.map((l) => new RegExp(`^${m}: turn ended at (\\S+)$`).exec(l)?.[1]).filter((t) => t !== undefined);
        expect({ m, began: began.length, ended: ended.length }).toEqual({ m, began: 1, ended: 1 });
        return { member: m, beganMs: Date.parse(began[0]!), endedMs: Date.parse(ended[0]!), handedOver: out.some((l) => l.startsWith("handed leadership to ")) };
    });
    turns.sort((a, b) => a.beganMs - b.beganMs);
    for (let i = 1; i < turns.length; i++) expect(turns[i].beganMs).toBeGreaterThanOrEqual(turns[i - 1].endedMs);
    const handed = turns.filter((t) => t.handedOver).map((t) => t.member);
    expect(handed.length).toBeLessThanOrEqual(1);
    if (handed.length === 1) expect(handed[0]).toBe(turns[turns.length - 1].member);
    return turns;
}

/**
 * An upgrade's first step, from a run's steps and log lines: `etcd-upgrade-snapshot` updated, its guard's
 * verdict (`upgrade check: <verdict>`), a pre-upgrade snapshot with a revision taken, and every member's `steps`
 * (`binaries`, and whatever else stages the release) updated and started only after it ended. Returns the step.
 */
export function expectSnapshotFirst(run: { steps: StepRecord[]; lines: string[] }, members: string[], verdict: RegExp, steps: string[] = ["binaries"]): StepRecord {
    const snap = run.steps.find((s) => s.name === "etcd-upgrade-snapshot" && s.op === "update");
    expect(snap).toBeDefined();
    const said = run.lines.filter((l) => l.includes("etcd-upgrade-snapshot | ")).map((l) => l.slice(l.indexOf("etcd-upgrade-snapshot | ") + 24));
    expect(said.some((l) => l.startsWith("upgrade check: ") && verdict.test(l.slice(15)))).toBe(true);
    expect(said.some((l) => /^snapshot \/var\/backups\/etcd\/etcd_etcd1_pre-upgrade_\d{8}T\d{6}Z\.db revision [1-9]/.test(l))).toBe(true);
    for (const m of members) {
        for (const step of steps) {
            const s = run.steps.find((x) => x.name === `etcd-${m}-${step}` && x.op === "update");
            expect({ step: `etcd-${m}-${step}`, updated: s !== undefined }).toEqual({ step: `etcd-${m}-${step}`, updated: true });
            expect(s!.startMs).toBeGreaterThanOrEqual(snap!.endMs);
        }
    }
    return snap!;
}

/** The `pulumi` block of `lab status --json`: how to run any pulumi command against the lab stack. */
export interface LabPulumi {
    bin: string;
    cwd: string;
    stack: string;
    configFile?: string;
    env: Record<string, string>;
}

/** `pulumi ARGS --stack … --config-file …` against a lab stack, exactly as `status --json` says to run it (bounded). */
export function labPulumiCli(p: LabPulumi, args: string[], timeoutMs = 300_000): SpawnSyncReturns<string> {
    return spawnSync(p.bin, [...args, "--stack", p.stack, ...(p.configFile ? ["--config-file", p.configFile] : [])], {
        cwd: p.cwd,
        env: { ...process.env, ...p.env },
        encoding: "utf8",
        timeout: timeoutMs,
        maxBuffer: 256 * 1024 * 1024,
    });
}

/** One resource of `pulumi stack export`. */
export interface ExportedResource {
    urn: string;
    type: string;
    custom: boolean;
    inputs?: Record<string, unknown>;
    outputs?: Record<string, unknown>;
}

/** `pulumi stack export` of a lab stack: the raw text and its resources (named by their URN's last part). */
export function stackExport(p: LabPulumi): { text: string; version: string; resources: (ExportedResource & { name: string })[] } {
    const r = labPulumiCli({ ...p, configFile: undefined }, ["stack", "export"], 60_000);
    if (r.status !== 0) throw new Error(`pulumi stack export failed: ${r.stderr}`);
    const d = JSON.parse(r.stdout) as { deployment: { manifest: { version: string }; resources?: ExportedResource[] } };
    return { text: r.stdout, version: d.deployment.manifest.version, resources: (d.deployment.resources ?? []).map((x) => ({ ...x, name: urnName(x.urn) })) };
}

/** `pulumi preview --expect-no-changes` of a lab stack: the run after an `up` must find nothing to do. */
export function expectNoChanges(p: LabPulumi): void {
    const r = labPulumiCli(p, ["preview", "--expect-no-changes", "--non-interactive", "--color", "never"], 300_000);
    if (r.status !== 0) throw new Error(`pulumi preview --expect-no-changes after up found changes or failed (exit ${r.status}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`);
}

/** Whether a value of `pulumi stack export` is a secret's ciphertext (never plain text). */
export function isCiphertext(v: unknown): boolean {
    return isSecretInput(v) && typeof (v as { ciphertext?: unknown }).ciphertext === "string";
}
