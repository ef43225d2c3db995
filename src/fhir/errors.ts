/** An error the FHIR layer answers with an HTTP status and an OperationOutcome. */
export interface OutcomeIssue {
  severity: 'fatal' | 'error' | 'warning' | 'information';
  code: string;
  diagnostics: string;
  expression?: string[];
}

export class FhirError extends Error {
  readonly issues: OutcomeIssue[];
  constructor(
    readonly status: number,
    message: string,
    issues?: OutcomeIssue[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'FhirError';
    this.issues = issues ?? [{ severity: 'error', code: codeForStatus(status), diagnostics: message }];
  }
}

function codeForStatus(status: number): string {
  switch (status) {
    case 404:
      return 'not-found';
    case 405:
      return 'not-supported';
    case 413:
      return 'too-costly';
    case 422:
      return 'invalid';
    case 400:
      return 'processing';
    case 403:
      return 'forbidden';
    case 429:
      return 'throttled';
    default:
      return status >= 500 ? 'exception' : 'processing';
  }
}

/** The OperationOutcome resource for an error. */
export function operationOutcome(err: FhirError): Record<string, unknown> {
  return {
    resourceType: 'OperationOutcome',
    issue: err.issues.map((i) => {
      const o: Record<string, unknown> = { severity: i.severity, code: i.code, diagnostics: i.diagnostics };
      if (i.expression) o.expression = i.expression;
      return o;
    }),
  };
}
