/** Bad input to forecast.js (flags, a model that cannot forecast, data too short for the request): the CLI prints it and exits 2. */
export class ForecastError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForecastError';
  }
}
