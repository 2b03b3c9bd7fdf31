package flow

import (
	"crypto/sha1"
	"math/rand/v2"
	"testing"
)

// sha1Short agrees with crypto/sha1 on every length it accepts.
func TestSHA1ShortMatchesCryptoSHA1(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	msg := make([]byte, 55)
	for n := 0; n <= 55; n++ {
		for range 200 {
			for i := range msg[:n] {
				msg[i] = byte(rng.Uint32())
			}
			if got, want := sha1Short(msg[:n]), sha1.Sum(msg[:n]); got != want {
				t.Fatalf("sha1Short(% x) = %x, want %x", msg[:n], got, want)
			}
		}
	}
}

func FuzzSHA1Short(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("abc"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 55 {
			msg = msg[:55]
		}
		if got, want := sha1Short(msg), sha1.Sum(msg); got != want {
			t.Fatalf("sha1Short(% x) = %x, want %x", msg, got, want)
		}
	})
}

func BenchmarkSHA1Short(b *testing.B) {
	msg := make([]byte, 16)
	b.Run("sha1Short", func(b *testing.B) {
		for b.Loop() {
			sha1Short(msg)
		}
	})
	b.Run("crypto/sha1", func(b *testing.B) {
		for b.Loop() {
			sha1.Sum(msg)
		}
	})
}
