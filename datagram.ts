/**
 * Placeholder, being written.
 *
 * @module
 */
export {};
