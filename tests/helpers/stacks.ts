/** Running the program on a stack file of this repository under mocks (the plan's harness). */
import * as path from "path";
import { readProject, readStackFile } from "../../tools/engine/stackFile";

export const ROOT = path.resolve(__dirname, "..", "..");
export const PROGRAM = path.join(ROOT, "index.ts");

/** `runProgram` options for a stack file (relative to the repository), with these secret values set. */
export function stackRun(file: string, secrets: Readonly<Record<string, string>>) {
    const sc = readStackFile(path.join(ROOT, file), readProject(ROOT));
    return {
        program: PROGRAM,
        project: sc.project,
        stack: sc.stack,
        config: { ...sc.config, ...secrets },
        secretKeys: [...sc.secretKeys, ...Object.keys(secrets)],
    };
}
