/** Bad dashboard input (a flag, a run folder, a port in use): the CLIs print the message and exit 2. */
export class UiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UiError';
  }
}
