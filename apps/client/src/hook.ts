// -E prog: EPIC5's server_ssl_eval as a program. After the handshake and before any application
// data it runs once with the five flags as arguments and the SSL_* items in its environment, stdin
// from /dev/null and its stdout sent to tcpclient's stderr (never into the data stream); exit 0
// accepts the certificate, anything else rejects it, and the answer is final both ways.
import { spawn } from 'node:child_process';
import { type CertEvaluation, type EvaluationPolicy, evaluationArgs, evaluationEnv } from '@ucspi/tls';

/** What the hook program did, for the log. */
export interface HookOutcome {
  accepted: boolean;
  /** Why it rejected: `exit N`, `signal S`, or `unable to run: CODE`. */
  detail: string;
}

/**
 * An evaluation policy that runs `prog` (searched in PATH) with the report. `onOutcome` hears how
 * it ended. The process is killed if the connection's deadline passes first (`signal`).
 */
export function programPolicy(
  prog: string,
  env: Record<string, string | undefined>,
  onOutcome: (o: HookOutcome) => void,
  signal?: AbortSignal,
): EvaluationPolicy {
  return (report: CertEvaluation) =>
    new Promise<boolean>((resolve) => {
      const child = spawn(prog, evaluationArgs(report), {
        env: { ...env, ...evaluationEnv(report) },
        // stdin /dev/null; stdout and stderr both to tcpclient's stderr.
        stdio: ['ignore', 2, 2],
        ...(signal ? { signal } : {}),
      });
      let done = false;
      const finish = (o: HookOutcome) => {
        if (done) return;
        done = true;
        onOutcome(o);
        resolve(o.accepted);
      };
      child.once('error', (err: NodeJS.ErrnoException) =>
        finish({ accepted: false, detail: `unable to run: ${err.code ?? err.message}` }),
      );
      child.once('exit', (code, sig) =>
        finish(
          code === 0
            ? { accepted: true, detail: 'exit 0' }
            : { accepted: false, detail: sig ? `signal ${sig}` : `exit ${code}` },
        ),
      );
    });
}
