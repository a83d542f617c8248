package discovery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"
)

// dhtReadTimeout bounds the wait for one DHT answer, as kad-dht's own
// sender does.
const dhtReadTimeout = 10 * time.Second

// errBadDHTAnswer is an answer a DHT peer should not have sent.
var errBadDHTAnswer = errors.New("malformed DHT answer")

// dhtSender sends pikcio's DHT messages, one stream per message, and
// checks each answer before kad-dht reads it. kad-dht v0.42 trusts the
// answer to a PUT_VALUE to carry a record (pb.ProtocolMessenger.PutValue
// reads its value through a nil pointer otherwise), in a goroutine of
// its own: one DHT server answering without a record would crash every
// node that stores a descriptor or a trust record near it. Owning the
// sender keeps that edge here.
type dhtSender struct {
	h      host.Host
	protos []protocol.ID
}

func newDHTSender(h host.Host, protos []protocol.ID) pb.MessageSenderWithDisconnect {
	return &dhtSender{h: h, protos: protos}
}

// OnDisconnect has nothing to drop: no stream outlives its message.
func (s *dhtSender) OnDisconnect(context.Context, peer.ID) {}

// SendMessage sends pmes to p and expects no answer.
func (s *dhtSender) SendMessage(ctx context.Context, p peer.ID, pmes *pb.Message) error {
	st, err := s.open(ctx, p, pmes)
	if err != nil {
		return err
	}
	return st.Close()
}

// SendRequest sends pmes to p and returns p's answer once it passes
// checkDHTAnswer.
func (s *dhtSender) SendRequest(ctx context.Context, p peer.ID, pmes *pb.Message) (*pb.Message, error) {
	st, err := s.open(ctx, p, pmes)
	if err != nil {
		return nil, err
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return nil, fmt.Errorf("dht request to %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if err := st.SetReadDeadline(time.Now().Add(dhtReadTimeout)); err != nil {
		st.Reset()
		return nil, fmt.Errorf("dht request to %s: %w", p, err)
	}
	r := msgio.NewVarintReaderSize(st, network.MessageSizeMax)
	b, err := r.ReadMsg()
	if err != nil {
		st.Reset()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("dht answer from %s: %w", p, err)
	}
	resp := new(pb.Message)
	err = proto.Unmarshal(b, resp)
	r.ReleaseMsg(b)
	if err == nil {
		err = checkDHTAnswer(pmes, resp)
	}
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("dht answer from %s: %w", p, err)
	}
	return resp, st.Close()
}

// open opens a DHT stream to p and writes pmes on it.
func (s *dhtSender) open(ctx context.Context, p peer.ID, pmes *pb.Message) (network.Stream, error) {
	st, err := s.h.NewStream(ctx, p, s.protos...)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriter(st)
	if err := pbio.NewDelimitedWriter(bw).WriteMsg(pmes); err == nil {
		err = bw.Flush()
	}
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("dht message to %s: %w", p, err)
	}
	return st, nil
}

// checkDHTAnswer refuses an answer of another type than its request, and
// an answer to PUT_VALUE without the record it stored.
func checkDHTAnswer(req, resp *pb.Message) error {
	if resp.GetType() != req.GetType() {
		return fmt.Errorf("%w: %v answered with %v", errBadDHTAnswer, req.GetType(), resp.GetType())
	}
	if req.GetType() == pb.Message_PUT_VALUE && resp.GetRecord() == nil {
		return fmt.Errorf("%w: PUT_VALUE answered without a record", errBadDHTAnswer)
	}
	return nil
}
