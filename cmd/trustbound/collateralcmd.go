package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/trustbound/trustbound/collateral"
)

// cmdCollateral moves vendor collateral between a connected machine and an
// air-gapped one: export the cache to a bundle file, import a bundle into a
// cache.
func cmdCollateral(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "export" && args[0] != "import") {
		return usageErr("collateral export --out FILE | collateral import FILE  (both take --cache DIR)")
	}
	fs := newFlags("collateral "+args[0], stderr)
	cacheDir := fs.String("cache", defaultCacheDir(), "collateral cache directory")
	out := fs.String("out", "", "bundle file to write (export)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *cacheDir == "" {
		return usageErr("--cache is required (no user cache directory here)")
	}
	f, err := collateral.New(collateral.Options{Dir: *cacheDir})
	if err != nil {
		return err
	}
	switch args[0] {
	case "export":
		if *out == "" || fs.NArg() != 0 {
			return usageErr("collateral export --out FILE")
		}
		w, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if err := f.Export(w); err != nil {
			w.Close()
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "collateral from %s exported to %s\n", *cacheDir, *out)
	case "import":
		if fs.NArg() != 1 {
			return usageErr("collateral import FILE")
		}
		r, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer r.Close()
		n, err := f.Import(r)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d collateral entries imported into %s\n", n, *cacheDir)
	}
	return nil
}
