// Package dxcapture records what a demixdp LibOS receives and sends as a
// pcapng file that tcpdump, tshark and Wireshark read.
//
// A Writer is a libos.CaptureSink: set it as libos.Config.Capture. Each
// frame becomes an Enhanced Packet Block on an interface block named after
// the libOS's interface, with
//
//   - its direction in the epb_flags option (inbound or outbound),
//   - its queue in the epb_queue option,
//   - a comment "in queue=0", "out queue=0", or, for a received frame the
//     stack dropped, "in queue=0 dropped=stack.udp_no_port" (the counter
//     that counted the drop).
//
// In tshark: frame.comment, frame.packet_flags_direction and
// frame.interface_queue. The pcapng encoding is github.com/gopacket/gopacket's
// pcapgo; this package lives outside libos so that the core does not
// import it.
package dxcapture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/demixdp/demixdp/libos"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// SnapLength is the snapshot length declared for every interface: more
// than any UMEM frame holds, so frames are never truncated.
const SnapLength = 65535

// Writer writes captured frames as pcapng. Its methods are safe for
// concurrent use (several LibOS queues may share one Writer).
type Writer struct {
	mu     sync.Mutex
	dst    io.Writer
	file   *os.File // set by Create: Close closes it
	ng     *pcapgo.NgWriter
	ifaces map[string]int // interface name -> pcapng interface id
	closed bool

	flags    pcapgo.NgEpbFlags
	queue    uint32
	comments [1]string
	memo     map[commentKey]string // Comment of each (direction, queue, drop) seen
}

type commentKey struct {
	dir   libos.Direction
	queue int
	drop  string
}

// NewWriter returns a Writer that writes pcapng to w. The section header
// is written with the first frame. Call Flush or Close to push buffered
// blocks out to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{dst: w, ifaces: make(map[string]int), memo: make(map[commentKey]string)}
}

// Create creates (or truncates) the file path and returns a Writer on it;
// Close flushes and closes the file.
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("dxcapture: %w", err)
	}
	w := NewWriter(f)
	w.file = f
	return w, nil
}

// ErrClosed reports a frame captured after Close.
var ErrClosed = errors.New("dxcapture: writer closed")

// CaptureFrame writes f (libos.CaptureSink). It fails with ErrClosed after
// Close, or with the underlying writer's error.
func (w *Writer) CaptureFrame(f *libos.CapturedFrame) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	id, err := w.iface(f.Interface)
	if err != nil {
		return err
	}
	ci := gopacket.CaptureInfo{
		Timestamp:      f.Time,
		CaptureLength:  len(f.Data),
		Length:         len(f.Data),
		InterfaceIndex: id,
	}
	w.flags.Direction = pcapgo.NgEpbFlagDirectionInbound
	if f.Dir == libos.Outbound {
		w.flags.Direction = pcapgo.NgEpbFlagDirectionOutbound
	}
	w.queue = uint32(f.Queue)
	k := commentKey{f.Dir, f.Queue, f.Drop}
	c, ok := w.memo[k]
	if !ok {
		c = Comment(f)
		w.memo[k] = c
	}
	w.comments[0] = c
	opts := pcapgo.NgPacketOptions{Comments: w.comments[:], Flags: &w.flags, Queue: &w.queue}
	if err := w.ng.WritePacketWithOptions(ci, f.Data, opts); err != nil {
		return fmt.Errorf("dxcapture: %w", err)
	}
	return nil
}

// Comment is the packet comment CaptureFrame writes for f.
func Comment(f *libos.CapturedFrame) string {
	c := fmt.Sprintf("%s queue=%d", f.Dir, f.Queue)
	if f.Drop != "" {
		c += " dropped=" + f.Drop
	}
	return c
}

// iface returns the pcapng interface id of name, writing the section
// header and the interface block the first time.
func (w *Writer) iface(name string) (int, error) {
	if id, ok := w.ifaces[name]; ok {
		return id, nil
	}
	intf := pcapgo.NgInterface{
		Name:                name,
		Description:         "demixdp libOS (AF_XDP)",
		OS:                  runtime.GOOS,
		LinkType:            layers.LinkTypeEthernet,
		SnapLength:          SnapLength,
		TimestampResolution: 9,
	}
	var id int
	var err error
	if w.ng == nil {
		opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
			Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "demixdp",
		}}
		w.ng, err = pcapgo.NewNgWriterInterface(w.dst, intf, opts)
	} else {
		id, err = w.ng.AddInterface(intf)
	}
	if err != nil {
		return 0, fmt.Errorf("dxcapture: %w", err)
	}
	w.ifaces[name] = id
	return id, nil
}

// Flush writes buffered blocks to the underlying writer.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if w.ng == nil {
		return nil
	}
	if err := w.ng.Flush(); err != nil {
		return fmt.Errorf("dxcapture: %w", err)
	}
	return nil
}

// Close flushes, and closes the file if Create made it. A Writer that saw
// no frame writes a section with one interface ("none") and no packet, so
// the file is still valid pcapng. Calling Close again returns nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if w.ng == nil {
		_, err = w.iface("none")
	}
	err = errors.Join(err, w.flushLocked())
	if w.file != nil {
		err = errors.Join(err, w.file.Close())
	}
	return err
}
