/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/tests", "<rootDir>/components"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
  testPathIgnorePatterns: ["/node_modules/", "/bin/"],
  testTimeout: 60000,
  // Two test files at a time (jest's default on 2 cores is one): the lab suites spend most of their time
  // waiting on real hosts and the real engine, and each has its own lab dir, address range and iptables chain.
  maxWorkers: 2,
  // The long lab suites first (jest has no durations of its own on a fresh machine): tests/helpers/sequencer.js.
  testSequencer: "<rootDir>/tests/helpers/sequencer.js",
};
