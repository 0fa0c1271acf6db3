/** Bad input to forecast.js (flags, a model that cannot forecast, data too short for the request): the CLI prints it and exits 2. */
export class ForecastError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForecastError';
  }
}

/** The model's forecast came out non-finite although its weights are finite: nothing is written, exit 3 (src/util/cli-errors.ts). */
export class NonFiniteForecastError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NonFiniteForecastError';
  }
}
