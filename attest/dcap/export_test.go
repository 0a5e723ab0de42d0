package dcap

// CollideForTest files the cache entry of what from verified under the
// cache key of to, as a collision of the Evaluator's non-cryptographic
// cache key would, and reports whether there was an entry to file.
func (e *Evaluator) CollideForTest(from, to *Input) bool {
	if e.cache == nil {
		return false
	}
	key := func(in *Input) uint64 {
		of := inputsOf(in.Kind, in.PCKChain[len(in.PCKChain)-1], in.PCKChain[1], in.Collateral)
		return of.hash(e.seed)
	}
	v, ok := e.cache.Get(key(from))
	if ok {
		e.cache.Put(key(to), v)
	}
	return ok
}
