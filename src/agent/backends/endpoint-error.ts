/**
 * A model endpoint that answers something other than a chat completion (an HTML page with 200, a body that is not
 * JSON, JSON without `choices`) is misconfigured, not a model that performs badly: such a reply stops the run instead
 * of being scored as an invalid action.
 */
export class ModelEndpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelEndpointError';
  }
}

/** What a 2xx reply that is not a chat completion is, as one line naming the endpoint. */
export function describeNonCompletion(url: string, mediaType: string, text: string): string {
  const head = text.trimStart().slice(0, 200).toLowerCase();
  if (mediaType === 'text/html' || head.startsWith('<!doctype html') || head.startsWith('<html') || /^<[a-z!]/.test(head)) {
    return `the model endpoint answered HTML, not JSON (${url}; is --base-url the /v1 API root?)`;
  }
  const shown = text.trim().slice(0, 60).replace(/\s+/g, ' ');
  return `the model endpoint answered ${mediaType || 'a body without content type'} that is not JSON (${url}: ${JSON.stringify(shown)}${text.trim().length > 60 ? '…' : ''}); is --base-url an OpenAI-compatible /v1 API root?`;
}
