/**
 * SSH as @pulumi/command v1.2.1 does it (engine-fidelity.md §1.3–1.5, §2), with the `ssh2` library:
 * - one fresh connection per execution; auth in the provider's order (privateKey, then password and
 *   keyboard-interactive, then the agent only when `agentSocketPath` or SSH_AUTH_SOCK is set); host keys
 *   unchecked unless `hostKey` is given;
 * - dialling retried up to `dialErrorLimit` failures with 100 ms × 1.5ⁿ sleeps capped at 5 s, and only
 *   the TCP connect bounded by `perDialTimeout`; the final error is `after N failed attempts: …`;
 * - one `exec` request, no PTY, so sshd runs the login shell with `-c`; `environment` as SSH `env`
 *   requests with want-reply (a refusal fails the command, as in production); stdin written only when
 *   non-empty, then EOF; completion only when the channel closes; no command timeout;
 * - stdout/stderr captured separately (one trailing newline stripped) plus an interleaved copy for the
 *   error text `<ssh error>: running "<command>":\n<output>`.
 */
import * as net from "net";
import * as path from "path";
import { AnyAuthMethod, Client, ClientChannel, ServerHostKeyAlgorithm, SFTPWrapper, utils } from "ssh2";

/** The connection inputs of command:remote:* (after the SDK's defaults). */
export interface SshConnection {
    host: string;
    port?: number;
    user?: string;
    password?: string;
    privateKey?: string;
    privateKeyPassword?: string;
    agentSocketPath?: string;
    dialErrorLimit?: number;
    perDialTimeout?: number;
    hostKey?: string;
    proxy?: unknown;
}

const CONNECTION_KEYS = new Set(["host", "port", "user", "password", "privateKey", "privateKeyPassword", "agentSocketPath", "dialErrorLimit", "perDialTimeout", "hostKey", "proxy"]);

/** Validates a connection value; unknown fields are an error (as a typed provider schema would reject them). */
export function parseConnection(v: unknown): SshConnection {
    if (typeof v !== "object" || v === null) throw new Error("connection is required");
    const c = v as Record<string, unknown>;
    const unknown = Object.keys(c).filter((k) => !CONNECTION_KEYS.has(k));
    if (unknown.length > 0) throw new Error(`connection has unknown field(s) ${unknown.join(", ")}`);
    if (typeof c.host !== "string" || c.host === "") throw new Error("connection.host is required");
    if (c.proxy !== undefined) throw new Error("connection.proxy is not supported by the lab engine stand-in");
    return c as unknown as SshConnection;
}

/** Go's %q for the strings the lab sees (strconv.Quote). */
export function goQuote(s: string): string {
    let out = '"';
    for (const ch of s) {
        const cp = ch.codePointAt(0)!;
        if (ch === '"') out += '\\"';
        else if (ch === "\\") out += "\\\\";
        else if (ch === "\n") out += "\\n";
        else if (ch === "\t") out += "\\t";
        else if (ch === "\r") out += "\\r";
        else if (ch === "\x07") out += "\\a";
        else if (ch === "\b") out += "\\b";
        else if (ch === "\f") out += "\\f";
        else if (ch === "\v") out += "\\v";
        else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
        else if (cp >= 0x80 && cp < 0xa0) out += `\\u${cp.toString(16).padStart(4, "0")}`;
        else out += ch;
    }
    return out + '"';
}

export interface DialObserver {
    /** A dial failed and will be retried (`Dial k/N failed: retrying`). */
    onRetry?(message: string): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tcpConnect(host: string, port: number, timeoutSeconds: number): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
        const s = net.connect({ host, port });
        const timer = timeoutSeconds > 0 ? setTimeout(() => {
            s.destroy();
            reject(new Error(`dial tcp ${host}:${port}: i/o timeout`));
        }, timeoutSeconds * 1000) : undefined;
        s.once("connect", () => {
            if (timer) clearTimeout(timer);
            resolve(s);
        });
        s.once("error", (e: NodeJS.ErrnoException) => {
            if (timer) clearTimeout(timer);
            reject(new Error(`dial tcp ${host}:${port}: connect: ${e.code === "ECONNREFUSED" ? "connection refused" : e.message}`));
        });
    });
}

function authMethods(c: SshConnection, user: string): AnyAuthMethod[] {
    const methods: AnyAuthMethod[] = [];
    if (c.privateKey !== undefined) {
        const parsed = utils.parseKey(c.privateKey, c.privateKeyPassword);
        // A key that does not parse fails at once, without retries (as the provider's SSHConfig does).
        if (parsed instanceof Error) throw Object.assign(new Error(`ssh: ${parsed.message}`), { permanent: true });
        methods.push({ type: "publickey", username: user, key: c.privateKey, ...(c.privateKeyPassword ? { passphrase: c.privateKeyPassword } : {}) });
    }
    if (c.password !== undefined) {
        const password = c.password;
        methods.push({ type: "password", username: user, password });
        methods.push({
            type: "keyboard-interactive",
            username: user,
            prompt: (_n, _i, _l, prompts, finish) => finish(prompts.map(() => password)),
        });
    }
    const agent = c.agentSocketPath ?? process.env.SSH_AUTH_SOCK;
    if (agent) methods.push({ type: "agent", username: user, agent });
    return methods;
}

function handshake(c: SshConnection, sock: net.Socket, user: string): Promise<Client> {
    return new Promise((resolve, reject) => {
        const client = new Client();
        const expected = c.hostKey ? hostKeyBlob(c.hostKey) : undefined;
        let mismatch = false;
        client.once("ready", () => resolve(client));
        // The provider's FixedHostKey check fails with x/crypto's "ssh: host key mismatch".
        client.once("error", (e) => reject(new Error(`ssh: handshake failed: ${mismatch ? "ssh: host key mismatch" : e.message}`)));
        client.connect({
            sock,
            username: user,
            authHandler: authMethods(c, user),
            // Only the TCP connect is bounded in production; 60 s here keeps a wedged lab from hanging forever.
            readyTimeout: 60_000,
            // With a pinned key the provider offers only that key's algorithm.
            ...(expected ? { algorithms: { serverHostKey: [expected.type as ServerHostKeyAlgorithm] } } : {}),
            hostVerifier: (key: Buffer) => {
                mismatch = expected !== undefined && !key.equals(expected.blob);
                return !mismatch;
            },
        });
    });
}

function hostKeyBlob(line: string): { type: string; blob: Buffer } {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 2) throw new Error(`connection.hostKey is not an authorized_keys line: ${line}`);
    return { type: parts[0], blob: Buffer.from(parts[1], "base64") };
}

/** Dials with the provider's retry budget and returns a ready client. */
export async function dial(c: SshConnection, obs: DialObserver = {}): Promise<Client> {
    const user = c.user ?? "root";
    const port = c.port ?? 22;
    const limit = c.dialErrorLimit ?? 10;
    const perDial = c.perDialTimeout ?? 15;
    let wait = 100;
    let last: Error | undefined;
    for (let attempt = 1; limit < 0 || attempt <= limit + 1; attempt++) {
        if (attempt > 10_000) break;
        try {
            const sock = await tcpConnect(c.host, port, perDial);
            try {
                return await handshake(c, sock, user);
            } catch (e) {
                sock.destroy();
                throw e;
            }
        } catch (e) {
            if ((e as { permanent?: boolean }).permanent) throw e;
            last = e as Error;
            if (limit >= 0 && attempt > limit) break;
            obs.onRetry?.(`Dial ${attempt}/${limit} failed: retrying`);
            await sleep(wait);
            wait = Math.min(wait * 1.5, 5000);
        }
    }
    throw new Error(`after ${limit} failed attempts: ${last?.message ?? "unknown error"}`);
}

/** What one execution produced. */
export interface ExecResult {
    /** Exit status, or undefined when the command ended by a signal or without a status. */
    code?: number;
    signal?: string;
    stdout: string;
    stderr: string;
}

/** Internals of ssh2 used to send `env` requests with want-reply before the exec request (ssh2's exec sends them without). */
interface ChannelInternals {
    _callbacks: ((hadErr?: boolean | Error) => void)[];
}
interface ClientInternals {
    _protocol: {
        exec(id: number, cmd: string, wantReply: boolean): void;
        env(id: number, key: string, value: string, wantReply: boolean): void;
    };
    _chanMgr: { get(id: number): unknown };
}

/**
 * Runs one command: `env` requests (want-reply; a refusal is `could not set environment variable "X":
 * ssh: setenv failed`), then `exec` without a PTY; stdin written when non-empty, then closed.
 * `onLine` receives output lines as they arrive (the provider's streaming).
 */
export function execCommand(
    client: Client,
    command: string,
    opts: {
        stdin?: string;
        environment?: Record<string, string>;
        /** Variables whose refusal is only a warning (the provider's PULUMI_COMMAND_STDOUT/STDERR). */
        optionalEnvironment?: Record<string, string>;
        onWarning?: (message: string) => void;
        onLine?: (stream: "stdout" | "stderr", line: string) => void;
    },
): Promise<ExecResult & { combined: string }> {
    return new Promise((resolve, reject) => {
        const env = { ...(opts.optionalEnvironment ?? {}), ...(opts.environment ?? {}) };
        const optional = new Set(Object.keys(opts.optionalEnvironment ?? {}).filter((k) => !(k in (opts.environment ?? {}))));
        const keys = Object.keys(env);
        let envError: Error | undefined;
        if (keys.length > 0) {
            const internals = client as unknown as ClientInternals;
            const proto = internals._protocol;
            const originalExec = proto.exec;
            proto.exec = (id: number, cmd: string, wantReply: boolean) => {
                proto.exec = originalExec;
                const chan = internals._chanMgr.get(id) as ChannelInternals;
                const execCallback = chan._callbacks.pop()!;
                const next = (i: number) => {
                    if (i === keys.length) {
                        chan._callbacks.push(execCallback);
                        originalExec.call(proto, id, cmd, wantReply);
                        return;
                    }
                    chan._callbacks.push((hadErr) => {
                        if (hadErr && optional.has(keys[i])) {
                            opts.onWarning?.(`Unable to set '${keys[i]}'. This only works if your SSH server is configured to accept these variables via AcceptEnv.`);
                            next(i + 1);
                        } else if (hadErr) {
                            envError = new Error(`could not set environment variable ${goQuote(keys[i])}: ssh: setenv failed`);
                            execCallback(envError);
                        } else next(i + 1);
                    });
                    proto.env(id, keys[i], env[keys[i]], true);
                };
                next(0);
            };
        }
        client.exec(command, { pty: false }, (err: Error | undefined, ch: ClientChannel) => {
            if (err) {
                reject(envError ?? err);
                return;
            }
            let stdout = "";
            let stderr = "";
            let combined = "";
            let code: number | undefined;
            let signal: string | undefined;
            const partial = { stdout: "", stderr: "" };
            const feed = (stream: "stdout" | "stderr", chunk: Buffer) => {
                const text = chunk.toString("utf8");
                if (stream === "stdout") stdout += text;
                else stderr += text;
                combined += text;
                if (opts.onLine) {
                    const lines = (partial[stream] + text).split("\n");
                    partial[stream] = lines.pop() ?? "";
                    for (const l of lines) opts.onLine(stream, l);
                }
            };
            ch.on("data", (d: Buffer) => feed("stdout", d));
            ch.stderr.on("data", (d: Buffer) => feed("stderr", d));
            ch.on("exit", (c: number | null, sig?: string) => {
                if (typeof c === "number") code = c;
                if (sig) signal = sig;
            });
            ch.on("close", () => {
                if (opts.onLine) for (const s of ["stdout", "stderr"] as const) if (partial[s]) opts.onLine(s, partial[s]);
                resolve({ code, signal, stdout, stderr, combined });
            });
            if (opts.stdin !== undefined && opts.stdin !== "") ch.end(opts.stdin);
            else ch.end();
        });
    });
}

/** The provider's error for a failed execution: `<ssh error>: running "<cmd>":\n<output>`. */
export function execError(command: string, r: ExecResult & { combined: string }): string | undefined {
    let sshErr: string;
    if (r.code === 0 && !r.signal) return undefined;
    if (r.code === undefined && r.signal === undefined) sshErr = "wait: remote command exited without exit status or exit signal";
    else sshErr = `Process exited with status ${r.code ?? -1}${r.signal ? ` from signal ${r.signal}` : ""}`;
    return `${sshErr}: running ${goQuote(command)}:\n${r.combined}`;
}

/** Strips exactly one trailing "\n" (the provider's `strings.TrimSuffix`). */
export function trimOneNewline(s: string): string {
    return s.endsWith("\n") ? s.slice(0, -1) : s;
}

function sftpOf(client: Client): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => client.sftp((err, s) => (err ? reject(err) : resolve(s))));
}

type Stat = { isDirectory(): boolean };
const statOf = (s: SFTPWrapper, p: string) => new Promise<Stat | undefined>((resolve) => s.stat(p, (err, st) => resolve(err ? undefined : st)));
const mkdir = (s: SFTPWrapper, p: string) => new Promise<void>((resolve, reject) => s.mkdir(p, (err) => (err ? reject(new Error(`sftp mkdir ${p}: ${err.message}`)) : resolve())));

async function mkdirAll(s: SFTPWrapper, dir: string): Promise<void> {
    const parts = dir.split("/").filter(Boolean);
    let cur = "";
    for (const p of parts) {
        cur += `/${p}`;
        const st = await statOf(s, cur);
        if (st === undefined) await mkdir(s, cur);
        else if (!st.isDirectory()) throw new Error(`sftp: ${cur} exists and is not a directory`);
    }
}

/** Creates (O_RDWR|O_CREAT|O_TRUNC, no attributes: mode 0666 & ~umask, the SSH user's) and writes a file. */
function writeFile(s: SFTPWrapper, remote: string, content: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
        s.open(remote, "w", (err, handle) => {
            if (err) return reject(new Error(`sftp create ${remote}: ${err.message}`));
            let off = 0;
            const step = () => {
                if (off >= content.length) return s.close(handle, (e) => (e ? reject(e) : resolve()));
                const n = Math.min(32768, content.length - off);
                s.write(handle, content, off, n, off, (e) => {
                    if (e) return reject(new Error(`sftp write ${remote}: ${e.message}`));
                    off += n;
                    step();
                });
            };
            step();
        });
    });
}

/** A CopyToRemote source the lab supports: a path-based file asset or a text asset. */
export type CopySource = { kind: "file"; path: string } | { kind: "text"; text: string };

/**
 * Copies like CopyToRemote v1.2.1 (file and text sources): a file goes to `remotePath/<name>` when
 * remotePath is an existing directory, else to remotePath (parents created); a text asset needs a file
 * path. No sudo, no chmod, never deletes.
 */
export async function sftpCopy(client: Client, source: CopySource, remotePath: string): Promise<string> {
    const s = await sftpOf(client);
    try {
        const st = await statOf(s, remotePath);
        let target = remotePath;
        if (st?.isDirectory()) {
            if (source.kind === "text") throw new Error(`remote path ${remotePath} is a directory: a StringAsset needs a file path`);
            target = path.posix.join(remotePath, path.basename(source.path));
        } else {
            await mkdirAll(s, path.posix.dirname(remotePath));
        }
        if (source.kind === "file") {
            // Concurrent writes, as the provider's pkg/sftp client (UseConcurrentWrites); no mode is sent.
            await new Promise<void>((resolve, reject) =>
                s.fastPut(source.path, target, { concurrency: 64 }, (err) => (err ? reject(new Error(`sftp create ${target}: ${err.message}`)) : resolve())),
            );
        } else await writeFile(s, target, Buffer.from(source.text, "utf8"));
        return target;
    } finally {
        s.end();
    }
}
