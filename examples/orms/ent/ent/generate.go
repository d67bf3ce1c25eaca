// Package ent is the ent client generated from ./schema; do not edit the
// generated files, change the schema and run go generate.
package ent

//go:generate go tool ent generate ./schema
