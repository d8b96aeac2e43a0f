package rss_test

import (
	"errors"
	"testing"

	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/rss"
	"golang.org/x/sys/unix"
)

// TestVethChannelsAndNoRSS: a veth made with 4 queues reports 4 receive
// channels, and has no RSS key or indirection table to read, so the libOS
// must bring replies home by hand-off there.
func TestVethChannelsAndNoRSS(t *testing.T) {
	for _, queues := range []int{1, 4} {
		lab := vethlab.ForTest(t, vethlab.Config{Name: "rss", Queues: queues})
		err := lab.RunInA(func() error {
			n, err := rss.Channels(lab.IfA)
			if err != nil {
				return err
			}
			if n != queues {
				t.Errorf("%d-queue veth: Channels = %d", queues, n)
			}
			_, err = rss.Read(lab.IfA)
			if !errors.Is(err, rss.ErrUnavailable) {
				t.Errorf("%d-queue veth: Read = %v, want ErrUnavailable", queues, err)
			}
			t.Logf("%d-queue veth: Read: %v", queues, err)
			if _, err := rss.Channels("dxnosuchif0"); !errors.Is(err, unix.ENODEV) {
				t.Errorf("Channels of a missing interface: %v, want ENODEV", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
