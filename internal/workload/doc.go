// Package workload holds one test: a workload through the auditpgx driver,
// after which the entries must replay to the tables (store.ReplayTable,
// store.Replay) and store.AsOf must give each step's rows. It lives apart
// from package store's tests because it imports the driver, which imports
// store.
package workload
