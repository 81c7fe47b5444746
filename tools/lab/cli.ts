/**
 * `npm run lab -- <command>`:
 *   up [--members N] [--prefix 127.x.y] [--version 3.5] [--rerun-commands] [--replace NAME] [--build NAME] [--restore-from FILE] [--renew TOKEN] [--object-store]
 *                                                             create the hosts (unless running) and run the program
 *                                                             (the real `pulumi up` of index.ts on the lab stack);
 *                                                             on a live lab, --members scales it, --replace replaces a member,
 *                                                             --version picks the etcd release (3.4: Debian's; 3.5, 3.6
 *                                                             or 3.x.y: built from the Go module proxy; default: the
 *                                                             lab's last, else 3.5; on a live lab: an upgrade),
 *                                                             --build repacks the tarball (a same-version upgrade),
 *                                                             --restore-from restores the cluster from a snapshot file
 *                                                             (or an s3:// object with --restore-sha256),
 *                                                             --renew re-issues every leaf certificate (etcd.pki.renew),
 *                                                             --object-store starts the lab's S3 store (versitygw) and
 *                                                             ships every snapshot to it (kept for later runs)
 *   status [--json]                                           members, PIDs, health, leader; client files; how to run
 *                                                             `pulumi` against the lab stack
 *   snapshot [--member NAME] [--json]                         an on-demand snapshot on one member (the first by default),
 *                                                             and the objects it uploaded
 *   reboot NAME                                               `systemctl reboot` inside a host; waits until it is back
 *   power-cut [NAME...]                                       kill every process of the hosts at once (all by default)
 *   power-on [NAME...]                                        boot hosts that are off (all by default)
 *   down                                                      `pulumi destroy`, then stop everything the lab started;
 *                                                             remove its files
 * See README "Lab".
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { down, powerCut, powerOnHosts, rebootHost, snapshot, status, trustHostKeys, up } from "./lab";

/** The whole `up` is bounded: a wedged lab fails instead of hanging CI. */
const UP_LIMIT_MS = 15 * 60_000;

function flag(args: string[], name: string): string | undefined {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Error(`${name} needs a value`);
    return v;
}

function usage(): never {
    console.error(
        "usage: npm run lab -- up [--members N] [--prefix 127.x.y] [--version 3.5] [--rerun-commands] [--replace NAME] [--build NAME] [--restore-from FILE|s3://B/K --restore-sha256 HEX] [--renew TOKEN] [--object-store] | status [--json] | snapshot [--member NAME] [--json] | reboot NAME | power-cut [NAME...] | power-on [NAME...] | trust NAME... | down",
    );
    process.exit(2);
}

async function main(argv: string[]): Promise<void> {
    const [cmd, ...args] = argv;
    const known: Record<string, string[]> = {
        up: ["--members", "--prefix", "--version", "--rerun-commands", "--replace", "--build", "--restore-from", "--restore-sha256", "--renew", "--object-store"],
        status: ["--json"],
        snapshot: ["--member", "--json"],
        reboot: [],
        "power-cut": [],
        "power-on": [],
        trust: [],
        down: [],
    };
    if (!cmd || !(cmd in known)) usage();
    for (const a of args) if (a.startsWith("--") && !known[cmd].includes(a)) throw new Error(`unknown option ${a} for ${cmd}`);
    if (cmd === "up") {
        const timer = setTimeout(() => {
            console.error(`lab up: still running after ${UP_LIMIT_MS / 60000} min; giving up (the lab is left as it is: \`npm run lab -- down\`)`);
            process.exit(1);
        }, UP_LIMIT_MS);
        timer.unref();
        const members = flag(args, "--members");
        const replace = flag(args, "--replace");
        const restoreFrom = flag(args, "--restore-from");
        const restoreSha = flag(args, "--restore-sha256");
        const remote = restoreFrom !== undefined && /^(https?|s3):\/\//.test(restoreFrom);
        if (remote && restoreSha === undefined) throw new Error("--restore-from with a URL needs --restore-sha256 (lab snapshot --json prints it for an object it uploaded)");
        await up({
            build: flag(args, "--build"),
            version: flag(args, "--version"),
            restore:
                restoreFrom === undefined
                    ? undefined
                    : remote
                      ? { fromSnapshot: restoreFrom, sha256: restoreSha! }
                      : { fromSnapshot: path.resolve(restoreFrom), sha256: createHash("sha256").update(fs.readFileSync(restoreFrom)).digest("hex") },
            members: members === undefined ? undefined : Number(members),
            prefix: flag(args, "--prefix"),
            rerunCommands: args.includes("--rerun-commands"),
            replace: replace === undefined ? undefined : [replace],
            renew: flag(args, "--renew"),
            objectStore: args.includes("--object-store"),
        });
        // The Pulumi runtime may keep handles open after the run; the lab's work is done.
        process.exit(0);
    } else if (cmd === "status") {
        const s = status();
        if (args.includes("--json")) console.log(JSON.stringify(s));
        else {
            for (const m of s.members) console.log(`${m.name.padEnd(8)} ${m.clientUrl.padEnd(26)} pid=${String(m.pid ?? "-").padEnd(8)} ${m.healthy ? "healthy" : "UNHEALTHY"}${m.leader ? " leader" : ""}`);
            console.log(`client: --cacert ${s.client.cacert} --cert ${s.client.cert} --key ${s.client.key}`);
            const env = Object.entries(s.pulumi.env).map(([k, v]) => `${k}=${v}`).join(" ");
            console.log(`pulumi: cd ${s.pulumi.cwd} && env ${env} pulumi <command> --stack ${s.pulumi.stack}${s.pulumi.configFile ? ` --config-file ${s.pulumi.configFile}` : ""}`);
        }
    } else if (cmd === "snapshot") {
        const r = snapshot(flag(args, "--member"));
        const last = r.uploaded[r.uploaded.length - 1];
        if (args.includes("--json")) console.log(JSON.stringify({ member: r.member, status: r.status, file: r.file, ...(last ? { object: last.object, sha256: last.sha256 } : {}), uploaded: r.uploaded }));
        else for (const l of r.lines) console.log(`${r.member} | ${l}`);
        if (r.status !== 0) process.exit(r.status);
    } else if (cmd === "reboot") {
        if (args.length !== 1) usage();
        const r = await rebootHost(args[0]);
        console.log(`lab: ${args[0]} rebooted: up again (SSH answers) ${(r.ms / 1000).toFixed(1)}s after \`systemctl reboot\``);
    } else if (cmd === "power-cut") {
        await powerCut(args.length > 0 ? args : undefined);
        console.log(`lab: power cut: ${args.length > 0 ? args.join(" ") : "every host"}`);
    } else if (cmd === "power-on") {
        const ms = await powerOnHosts(args.length > 0 ? args : undefined);
        console.log(`lab: powered on ${args.length > 0 ? args.join(" ") : "every host"}: booted in ${(ms / 1000).toFixed(1)}s`);
    } else if (cmd === "trust") {
        if (args.length === 0) usage();
        for (const h of trustHostKeys(args)) console.log(`lab: ${h.name} host key trusted: ${h.hostKey}`);
    } else {
        const r = await down();
        if (r.destroyError) process.exit(1);
    }
}

main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`lab: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
});
