package dxnet_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/dxnet"
	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/libos"
)

// smallStackConn is a stack on a 512-frame UMEM and its connection to a
// kernel echo on port, both closed when the test ends.
func smallStackConn(t *testing.T, port uint16) (*dxnet.Stack, *dxnet.TCPConn) {
	t.Helper()
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, func(c *libos.Config) { c.Frames = 512 })
	kernelEcho(t, kernelListen(t, lab, port))
	nc, err := st.Dial("tcp", lab.AddrB.Addr().String()+":"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return st, nc.(*dxnet.TCPConn)
}

// TestZeroCopy: WriteSGA sends SGAs filled in place (AllocSGA) and ReadSGA
// hands over the received frames, starting where a plain Read stopped;
// 8 MB go through each way with a 512-frame UMEM, which only works if
// FreeSGA and WriteSGA give every frame back.
func TestZeroCopy(t *testing.T) {
	st, c := smallStackConn(t, 7800)
	const total = 8 << 20
	want := pattern(total, 9)
	sent := run(func() (err error) {
		defer func() {
			if err != nil {
				c.Close() // so that the reader below stops too
			}
		}()
		for off := 0; off < total; {
			size := min(total-off, 1+(off/7)%20000)
			sga, err := st.AllocSGA(size)
			if err != nil {
				return err
			}
			if sga.Len() != size {
				return errors.New("AllocSGA: wrong size")
			}
			for _, seg := range sga.Segs {
				off += copy(seg, want[off:])
			}
			if err := c.WriteSGA(sga); err != nil {
				return err
			}
		}
		return c.CloseWrite()
	})
	var got bytes.Buffer
	// A plain Read of a few bytes first, then SGAs from where it stopped.
	head := make([]byte, 5)
	if _, err := io.ReadFull(c, head); err != nil {
		t.Fatal(err)
	}
	got.Write(head)
	for {
		sga, err := c.ReadSGA()
		if err == io.EOF {
			break
		}
		if err != nil {
			select {
			case serr := <-sent:
				t.Fatalf("sender: %v (ReadSGA after %d bytes: %v)", serr, got.Len(), err)
			default:
			}
			t.Fatalf("ReadSGA after %d bytes: %v", got.Len(), err)
		}
		if sga.Len() == 0 {
			t.Fatal("ReadSGA returned an empty SGA before EOF")
		}
		for _, seg := range sga.Segs {
			got.Write(seg)
		}
		st.FreeSGA(sga)
	}
	if err := within(t, "sender", sent); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("zero-copy echo: %d bytes, want %d (equal %v)", got.Len(), total, bytes.Equal(got.Bytes(), want))
	}
	if _, err := st.AllocSGA(0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("AllocSGA(0): %v, want EINVAL", err)
	}
	if err := c.WriteSGA(nil); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("WriteSGA(nil): %v, want EINVAL", err)
	}
}

// TestWriteSGAPastTheDeadlineFreesTheSGA: a WriteSGA that fails on its
// deadline before being queued still takes the SGA. 2,000 of them on a
// 512-frame UMEM would exhaust the frames (and AllocSGA would wait for
// ever) if a single one leaked.
func TestWriteSGAPastTheDeadlineFreesTheSGA(t *testing.T) {
	st, c := smallStackConn(t, 7801)
	if err := c.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	err := within(t, "2,000 writes past the deadline", run(func() error {
		for i := range 2000 {
			sga, err := st.AllocSGA(1400)
			if err != nil {
				return err
			}
			if err := c.WriteSGA(sga); !errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("write %d: %v, want os.ErrDeadlineExceeded", i, err)
			}
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
}
