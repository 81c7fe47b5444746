/**
 * The cluster's teardown step (`<cluster>-teardown`), rendered by pure functions; the shell is
 * `sh/teardown.sh`. On `pulumi destroy` the engine deletes every member's start step in one layer, in
 * parallel: each would leave by removing itself through the others in turns, waiting for members that are
 * leaving at the same time. The teardown step depends on every member's start step, so its delete runs
 * before any member leaves: it writes a marker (`teardownMarkerKey`, under the members' coordination prefix)
 * and waits until every member answers it in a local read; each member's leave that reads it just stops etcd
 * and wipes its data. Its create clears the marker.
 *
 * The step must never write the marker on a cluster that stays: its command has no `triggers` (every input
 * change is an in-place update that re-runs the create, which clears), the component sets
 * `deleteBeforeReplace` (a forced replacement writes the marker and then clears it, before any member
 * could leave), and the marker lives under a lease (`TEARDOWN_MARKER_TTL_SECONDS`).
 */
import { PKI_DIR } from "../pki/certTable";
import { BIN_DIR } from "./flags";
import { shellFile, shellParams, TEARDOWN_MARKER_TTL_SECONDS, TEARDOWN_SH, teardownMarkerKey } from "./rolling";

/** What the teardown step needs. */
export interface TeardownOptions {
    /** The cluster's name (its members' coordination prefix). */
    clusterName: string;
    /** Every planned member's client URL. */
    endpoints: readonly string[];
    /** The marker's lease, seconds. Default `TEARDOWN_MARKER_TTL_SECONDS`. */
    markerTtlSeconds?: number;
    /** The longest wait until every member sees the marker (then a warning), seconds. Default 30. */
    ackWaitSeconds?: number;
    /** The longest wait of the create for the cluster to answer (then it fails), seconds. Default 300. */
    clearWaitSeconds?: number;
}

/** The step's scripts: `create` clears the marker, `delete` writes it and waits until every member sees it. */
export interface TeardownScripts {
    create: string;
    delete: string;
}

function teardownStep(o: TeardownOptions, header: string, entry: string): string {
    for (const e of o.endpoints) if (!/^https?:\/\/[^\s,]+$/.test(e)) throw new Error(`teardown: bad endpoint ${e}`);
    const bounds = { markerTtlSeconds: o.markerTtlSeconds ?? TEARDOWN_MARKER_TTL_SECONDS, ackWaitSeconds: o.ackWaitSeconds ?? 30, clearWaitSeconds: o.clearWaitSeconds ?? 300 };
    for (const [k, v] of Object.entries(bounds)) if (!Number.isInteger(v) || v < 1) throw new Error(`teardown: ${k} must be a positive integer (got ${v})`);
    return `
# etcd-ha teardown: cluster ${o.clusterName}, ${header}
${shellParams({
    cluster: o.clusterName,
    marker: teardownMarkerKey(o.clusterName),
    endpoints: o.endpoints.join(","),
    marker_ttl: bounds.markerTtlSeconds,
    ack_wait: bounds.ackWaitSeconds,
    clear_wait: bounds.clearWaitSeconds,
    bin_dir: BIN_DIR,
    pki_dir: PKI_DIR,
})}
${shellFile(TEARDOWN_SH).trimEnd()}
${entry}
`;
}

/**
 * The teardown step's scripts, run on one member (the admin client certificate, every member's endpoint):
 * - create (`etcd_ha_teardown_clear`): deletes the marker, waiting for the cluster to answer (at most
 *   `clearWaitSeconds`, then it fails, so the step is created only once the marker is known to be gone);
 * - delete (`etcd_ha_teardown_mark`): writes the marker under its lease, then waits until every member the
 *   cluster lists answers it in a serializable read (at most `ackWaitSeconds`). A cluster without quorum,
 *   or a member that does not answer, is a warning and exits 0: the members' leaves then remove each
 *   member through the others, as on a scale-in.
 */
export function teardownScripts(o: TeardownOptions): TeardownScripts {
    return {
        create: teardownStep(o, "create: clears the destroy marker.", "etcd_ha_teardown_clear"),
        delete: teardownStep(o, "delete (pulumi destroy): marks the cluster as being destroyed before its members leave.", "etcd_ha_teardown_mark"),
    };
}
