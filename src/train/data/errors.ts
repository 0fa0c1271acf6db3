/**
 * Bad input to the data pipeline (a file, a cell, a config value). The message always says what is
 * wrong, where (file:line, key path) and how to fix it; the CLI prints it and exits with code 2.
 */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}
