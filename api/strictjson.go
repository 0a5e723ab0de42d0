package api

import "github.com/trustbound/trustbound/internal/strictjson"

// UniqueNames reports an error if doc is not one valid JSON value, or if
// an object in it, at any depth, names a member twice (names compared
// after unescaping, as a decoder reads them). Readers differ on which of
// two equal names they take, so a document that repeats one says
// different things to different readers. It is internal/strictjson's
// check, without a depth bound.
func UniqueNames(doc []byte) error { return strictjson.Check(doc, 0) }
