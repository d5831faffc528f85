package state

import (
	"encoding/binary"
	"fmt"
)

// Key layout (see doc.go for the prose version):
//
//	store key:    len(store) | store | user key      len(store) in [1, MaxStoreNameLen]
//	metadata key: 0x00       | name                  name: any bytes, 1..MaxMetaNameLen
//
// The first byte of a store key is the length of the store name, which is
// never zero, so no store key can start with metaTag. Because the store name
// is length-prefixed, store "a" (0x01 'a') and store "ab" (0x02 'a' 'b') have
// prefixes that are not prefixes of each other, whatever the user keys are.

const (
	// MaxStoreNameLen is the longest store name accepted. Store names are
	// repeated in every key (Pebble's block prefix compression makes that
	// cheap), so keep them short.
	MaxStoreNameLen = 64
	// MaxMetaNameLen is the longest metadata name accepted.
	MaxMetaNameLen = 255

	// metaTag is the first byte of every metadata key. No store key starts
	// with it because store prefixes start with the name length (>= 1).
	metaTag = 0x00
)

// validStoreName reports why name is not a valid store name, or nil. Valid
// names are 1..MaxStoreNameLen bytes of [A-Za-z0-9._-].
func validStoreName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: store name is empty", ErrInvalidName)
	}
	if len(name) > MaxStoreNameLen {
		return fmt.Errorf("%w: store name %q longer than %d bytes", ErrInvalidName, name, MaxStoreNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: store name %q has byte %q outside [A-Za-z0-9._-]", ErrInvalidName, name, c)
		}
	}
	return nil
}

// validMetaName reports why name is not a valid metadata name, or nil.
func validMetaName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: metadata name is empty", ErrInvalidName)
	}
	if len(name) > MaxMetaNameLen {
		return fmt.Errorf("%w: metadata name %q longer than %d bytes", ErrInvalidName, name, MaxMetaNameLen)
	}
	return nil
}

// appendStorePrefix appends the key prefix of store to dst. The name must
// have been validated.
func appendStorePrefix(dst []byte, store string) []byte {
	dst = append(dst, byte(len(store)))
	return append(dst, store...)
}

// appendStoreKey appends the full Pebble key of (store, key) to dst.
func appendStoreKey(dst []byte, store string, key []byte) []byte {
	return append(appendStorePrefix(dst, store), key...)
}

// appendStoreUpper appends the exclusive upper bound of all keys of store:
// the prefix with its last byte incremented. The last byte is a name byte
// from the validated charset, so it is never 0xff and cannot overflow; no
// key outside the store sorts between the prefix and this bound.
func appendStoreUpper(dst []byte, store string) []byte {
	dst = appendStorePrefix(dst, store)
	dst[len(dst)-1]++
	return dst
}

// appendMetaKey appends the Pebble key of metadata name to dst.
func appendMetaKey(dst []byte, name string) []byte {
	dst = append(dst, metaTag)
	return append(dst, name...)
}

// storeBounds returns the Pebble bounds of an iterator over store restricted
// to user keys in [lower, upper); nil means unbounded on that side (within
// the store). Both returned slices are freshly allocated.
func storeBounds(store string, lower, upper []byte) (lo, hi []byte) {
	lo = appendStoreKey(make([]byte, 0, 1+len(store)+len(lower)), store, lower)
	if upper == nil {
		hi = appendStoreUpper(make([]byte, 0, 1+len(store)), store)
	} else {
		hi = appendStoreKey(make([]byte, 0, 1+len(store)+len(upper)), store, upper)
	}
	return lo, hi
}

// encodeOffset encodes an offset as 8 big-endian bytes.
func encodeOffset(off int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(off))
}

// decodeOffset decodes a value written by encodeOffset.
func decodeOffset(name string, v []byte) (int64, error) {
	if len(v) != 8 {
		return 0, &CorruptionError{Op: "offset " + name, Err: fmt.Errorf("value has %d bytes, want 8", len(v))}
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}
