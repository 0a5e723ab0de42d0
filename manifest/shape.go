package manifest

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/trustbound/trustbound/attest"
)

// A shape is what the JSON encoding of a Go type looks like: the schema
// that Parse checks a document against before decoding it. Shapes are
// derived once from the json tags, so the tags stay the one schema.
type shape struct {
	kind   shapeKind
	fields map[string]*shape // kObject
	elem   *shape            // kArray
	// kInt: the range of the Go integer type.
	min int64
	max uint64
	// kObject: two keys of which at most one may be set.
	excl [2]string
}

type shapeKind uint8

const (
	kObject shapeKind = iota
	kArray
	kString
	kHex
	kInt
	kBool
)

// measurementKey is Reference's singular shorthand for measurements.
const measurementKey = "measurement"

var manifestShape = shapeOf(reflect.TypeFor[Manifest]())

func shapeOf(t reflect.Type) *shape {
	switch t {
	case reflect.TypeFor[attest.Hex]():
		return &shape{kind: kHex}
	case reflect.TypeFor[Reference]():
		s := structShape(t)
		s.fields[measurementKey] = &shape{kind: kHex}
		s.excl = [2]string{measurementKey, "measurements"}
		return s
	}
	switch t.Kind() {
	case reflect.Pointer:
		return shapeOf(t.Elem())
	case reflect.Struct:
		return structShape(t)
	case reflect.Slice:
		return &shape{kind: kArray, elem: shapeOf(t.Elem())}
	case reflect.String:
		return &shape{kind: kString}
	case reflect.Bool:
		return &shape{kind: kBool}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := t.Bits()
		return &shape{kind: kInt, min: -1 << (bits - 1), max: 1<<(bits-1) - 1}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &shape{kind: kInt, max: math.MaxUint64 >> (64 - t.Bits())}
	}
	panic(fmt.Sprintf("manifest: no JSON shape for %v", t))
}

func structShape(t reflect.Type) *shape {
	s := &shape{kind: kObject, fields: make(map[string]*shape)}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		if f.Anonymous {
			panic(fmt.Sprintf("manifest: embedded field %v.%s has no shape", t, f.Name))
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		s.fields[name] = shapeOf(f.Type)
	}
	return s
}

// exclusive returns the key that may not be set beside key, or "".
func (s *shape) exclusive(key string) string {
	switch key {
	case s.excl[0]:
		return s.excl[1]
	case s.excl[1]:
		return s.excl[0]
	}
	return ""
}

// checkInt returns why text is not a decimal integer in the shape's range,
// or "".
func (s *shape) checkInt(text string) string {
	digits, neg := strings.CutPrefix(text, "-")
	if digits == "" || digits[0] == '0' && (len(digits) > 1 || neg) || strings.Trim(digits, "0123456789") != "" {
		return fmt.Sprintf("want a decimal integer, got %s", text)
	}
	if neg {
		v, err := strconv.ParseInt(text, 10, 64)
		if err != nil || v < s.min {
			return fmt.Sprintf("%s is out of range (%d to %d)", text, s.min, s.max)
		}
		return ""
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || v > s.max {
		return fmt.Sprintf("%s is out of range (%d to %d)", text, s.min, s.max)
	}
	return ""
}
