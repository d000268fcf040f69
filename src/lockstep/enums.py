"""Every enum whose values cross the C++ boundary, declared once.

Each class mirrors one C++ `enum class` (named in its docstring) value for value; the bindings
expose the C++ enumerators and tests/test_enum_parity.py holds every class here to them. Configs,
manifests and reports spell a member as its lowercase name (`label`: "lognormal", "reduce_only",
"l2"); `from_label` reads it back, so those strings come from these names and nowhere else.

The event encoding's enums (EventKind, Side, Flag) live with the schema in lockstep.events.
This module depends on nothing but the standard library.
"""
from __future__ import annotations

import enum


class LabeledEnum(enum.IntEnum):
    """An IntEnum spelled in text as its lowercase member name, `label`."""

    label: str

    def __init__(self, *args: object) -> None:
        # Computed once per member: labels are read per record (quarantine reasons, verdicts).
        self.label = self.name.lower()

    @classmethod
    def from_label(cls, label: str):
        """The member whose label is `label`; ValueError listing the labels otherwise."""
        member = cls.__members__.get(label.upper()) if isinstance(label, str) else None
        if member is None or member.label != label:
            raise ValueError(f"{label!r} is not one of {', '.join(cls.labels())}")
        return member

    @classmethod
    def labels(cls) -> tuple[str, ...]:
        return tuple(m.label for m in cls)


# --------------------------------------------------------------------------------------------
# base


class Status(LabeledEnum):
    """lockstep::Status (base/status.hpp): what a hot C++ call returns instead of throwing.
    lockstep.errors.check_status turns one into an exception."""

    OK = 0
    OUTPUT_FULL = 1  # the output columns are full: drain them and call again
    NEED_MORE_INPUT = 2  # a partial record remains; feed more bytes (or finish)
    WOULD_BLOCK = 3  # a non-blocking socket cannot proceed now: wait until it is ready
    INVALID_ARGUMENT = 10
    UNKNOWN_INSTRUMENT = 11
    DECODE_ERROR = 20  # the input is malformed; the decoder says where and why
    NOT_MULTIPLE = 21  # a price or size is not a multiple of the instrument's increment
    OVERFLOW = 22  # a number does not fit the fixed-point range
    SYSTEM_ERROR = 30  # an operating-system call failed; the caller keeps its errno
    PEER_CLOSED = 31  # the other end closed the connection
    BAD_ADDRESS = 32  # an address that does not parse (the parser says why)


# --------------------------------------------------------------------------------------------
# core: books, replay, validation rules


class BookKind(LabeledEnum):
    """lockstep::BookType (core/replay.hpp), also lockstep::SynthBook: "l2" (price levels) or
    "l3" (order by order) in manifests and configs."""

    L2 = 0
    L3 = 1


class L2Result(LabeledEnum):
    """lockstep::L2Result."""

    OK = 0  # level inserted or its quantity replaced
    REMOVED = 1  # qty 0 removed an existing level
    UNKNOWN_LEVEL = 2  # qty 0 for a level not in the book
    BAD_QTY = 3  # negative quantity
    BAD_PRICE = 4  # price outside [MIN_PRICE, MAX_PRICE]
    BAD_SIDE = 5  # side neither bid nor ask


class L3Result(LabeledEnum):
    """lockstep::L3Result."""

    OK = 0
    UNKNOWN_ORDER = 1  # no resting order has this id
    DUPLICATE_ORDER = 2  # add of an id already resting
    BAD_QTY = 3  # qty <= 0 where a size is needed, < 0 on modify, or level total overflows int64
    BAD_PRICE = 4  # price outside [MIN_PRICE, MAX_PRICE]
    BAD_SIDE = 5  # add with a side neither bid nor ask


class Anomaly(LabeledEnum):
    """lockstep::Anomaly (core/replay.hpp): data-quality anomalies the replay counts, reported
    by label."""

    UNKNOWN_LEVEL = 0
    UNKNOWN_ORDER = 1
    DUPLICATE_ORDER = 2
    CROSSED_BOOK = 3
    BAD_INSTRUMENT = 4
    WRONG_BOOK_KIND = 5
    BAD_SIDE = 6
    BAD_QUANTITY = 7
    UNKNOWN_KIND = 8
    BAD_PRICE = 9


class Rule(LabeledEnum):
    """lockstep::Rule (core/rules.hpp): why a record is not in canonical data. Labels are stable:
    manifests and reports use them. docs/data.md is the normative description of each rule."""

    OK = 0
    SEQUENCE_GAP = 1  # a sequence break: the book is unknown until a snapshot or clear
    TS_RECV_BACKWARDS = 2  # the receive clock went back
    FEED_LATENCY = 3  # ts_recv - ts_event outside the configured bounds (negative included)
    CROSSED_BOOK = 4  # best bid >= best ask after a complete message, in continuous trading
    UNKNOWN_ORDER_REF = 5  # L3: modify/delete/execute of an order not in the book, or a duplicate add
    BAD_PRICE_QTY = 6  # zero or negative price or quantity where not allowed
    DUPLICATE_MESSAGE = 7  # a message already seen (same or older sequence id)
    DELTAS_BEFORE_SNAPSHOT = 8  # book deltas for an instrument whose book was never snapshotted
    MALFORMED_RECORD = 9  # bytes that do not parse as the format (garbage, bad JSON, bad field)
    UNSUPPORTED_MESSAGE = 10  # a well-formed message we do not decode (other streams, replies)
    TRUNCATED_RECORD = 11  # the input ends inside a record (a torn tail)
    CROSSED_BOOK_PHASE_UNKNOWN = 12  # crossed while no trading phase was announced (may be pre-open)


class TradingPhase(LabeledEnum):
    """lockstep::TradingPhase (core/events.hpp): where a trading session stands, as the venue
    announces it in a TRADING_PHASE event (the value is that event's `side`). A crossed book is
    an error only in CONTINUOUS; UNKNOWN is the phase before any announcement."""

    UNKNOWN = 0
    PRE_OPEN = 1  # orders accepted, no matching: they may rest crossed
    AUCTION = 2  # an opening, closing or reopening cross is being called
    CONTINUOUS = 3  # orders match as they arrive
    HALTED = 4  # halted or paused
    CLOSED = 5  # the session is over


class RuleAction(LabeledEnum):
    """lockstep::RuleAction (data/validate.hpp): what the validator does with a rule's finds."""

    OFF = 0
    WARN = 1
    QUARANTINE = 2


# --------------------------------------------------------------------------------------------
# core: intents, risk, queue, execution


class IntentKind(LabeledEnum):
    """lockstep::IntentKind. 0 is unused: a zeroed intent is an unknown kind, which Risk denies."""

    SUBMIT_LIMIT = 1
    SUBMIT_MARKET = 2
    CANCEL = 3
    REPLACE = 4


class TimeInForce(LabeledEnum):
    """lockstep::TimeInForce."""

    GTC = 0
    IOC = 1
    POST_ONLY = 2


class RiskReason(LabeledEnum):
    """lockstep::RiskReason, numbered in check order (the order-entry rules, added later, excepted).
    docs/risk.md says what each means."""

    ALLOWED = 0
    UNKNOWN_INTENT_KIND = 1
    UNKNOWN_INSTRUMENT = 2
    KILL_SWITCH = 3
    HALTED = 4
    BAD_SIDE = 5
    BAD_TIME_IN_FORCE = 6
    NON_POSITIVE_QTY = 7
    NON_POSITIVE_PRICE = 8
    REDUCE_ONLY = 9
    MAX_ORDER_QTY = 10
    NO_MID = 11
    MAX_ORDER_NOTIONAL = 12
    PRICE_BAND = 13
    MAX_POSITION = 14
    MAX_OPEN_ORDERS = 15
    MAX_OPEN_ORDERS_TOTAL = 16
    RATE_LIMIT = 17
    CUSTOM = 18  # a custom Python rule denied
    UNKNOWN_ORDER = 19  # engine: cancel/replace target neither live nor pending
    DUPLICATE_ORDER_ID = 20  # engine: client order id already live or pending
    QUEUE_FULL = 21  # engine: allowed, but the intent queue had no room
    # The venue's order-entry rules (checked right after NON_POSITIVE_PRICE; docs/risk.md):
    OFF_TICK = 22  # a priced order's price is not a multiple of the tick size
    OFF_LOT = 23  # qty is not a multiple of the lot size
    BELOW_MIN_QTY = 24  # qty below the minimum quantity
    BELOW_MIN_NOTIONAL = 25  # price (mid for market orders) x qty below the minimum notional
    ORDER_ENTRY_DOWN = 26  # engine, live: a submit/replace while order entry is down


class TradingMode(LabeledEnum):
    """lockstep::TradingMode; "active", "reduce_only", "halted" in configs."""

    ACTIVE = 0
    REDUCE_ONLY = 1  # only orders that cannot grow |position|; cancels always pass
    HALTED = 2  # only cancels


class QueueResult(LabeledEnum):
    """lockstep::QueueResult."""

    QUEUED = 0
    CANCELED_BEFORE_DISPATCH = 1  # the cancel removed its pending submit; tell the strategy
    FULL = 2
    BAD_INSTRUMENT = 3


class OrderStatus(LabeledEnum):
    """lockstep::OrderStatus."""

    SUBMITTED = 1
    ACCEPTED = 2
    PARTIALLY_FILLED = 3
    FILLED = 4
    CANCELED = 5
    REJECTED = 6
    EXPIRED = 7

    @property
    def terminal(self) -> bool:
        """Filled, canceled, rejected or expired (C++ is_terminal)."""
        return self in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED,
                        OrderStatus.EXPIRED)


class ExecResult(LabeledEnum):
    """lockstep::ExecResult."""

    OK = 0
    UNKNOWN_ORDER = 1
    DUPLICATE_ORDER = 2
    INVALID_TRANSITION = 3
    OVERFILL = 4
    BAD_QTY = 5  # qty <= 0, or a replace qty not above filled_qty
    BAD_INTENT = 6  # not a submit kind, side not bid/ask, or instrument >= MAX_INSTRUMENTS


# --------------------------------------------------------------------------------------------
# venue


class MatchEventKind(LabeledEnum):
    """lockstep::MatchEventKind."""

    FILL = 1
    CANCELED = 2  # qty = the canceled quantity (IOC remainder or cancel())
    REJECTED = 3  # qty = the order's qty
    CANCEL_REJECTED = 4
    REPLACED = 5  # price = new price, qty = new remaining
    REPLACE_REJECTED = 6  # order unchanged; price/qty as asked


class MatchReject(LabeledEnum):
    """lockstep::MatchReject."""

    NONE = 0
    POST_ONLY_WOULD_CROSS = 1
    BAD_QTY = 2
    BAD_PRICE = 3
    BAD_SIDE = 4
    BAD_TIF = 5
    DUPLICATE_ORDER = 6
    UNKNOWN_ORDER = 7
    BOOK_UNAVAILABLE = 8  # the venue's book is invalid after a feed gap, until a snapshot
    NOT_TRADING = 9  # not in continuous trading (pre-open, auction, halted, closed): no auction simulated
    OFF_TICK = 10  # the order-entry rules (docs/venue.md): price not a multiple of the tick size
    OFF_LOT = 11  # qty not a multiple of the lot size
    BELOW_MIN_QTY = 12
    BELOW_MIN_NOTIONAL = 13  # price (mid for market orders) x qty below the minimum notional


class SubmitOutcome(LabeledEnum):
    """lockstep::SubmitOutcome."""

    RESTED = 0  # some of the order rests (filled_qty may be > 0)
    FILLED = 1  # fully filled at submission
    CANCELED = 2  # IOC remainder (possibly all) canceled
    REJECTED = 3


class QueueModel(LabeledEnum):
    """lockstep::QueueModel; "conservative" or "probabilistic" in configs."""

    CONSERVATIVE = 0  # level decreases are assumed behind us
    PROBABILISTIC = 1  # level decreases are shared ahead/behind by a power law


class LatencyKind(LabeledEnum):
    """lockstep::LatencyKind: the latency model's kind, "constant", "lognormal" or "feed" in
    configs (venue.latency.model; C++ spells the second LogNormal). Not LatencyModel, which
    names the model itself (lockstep.venue.matching.LatencyModel, C++ lockstep::LatencyModel)."""

    CONSTANT = 0  # entry / response as given
    LOGNORMAL = 1  # median entry / response times exp(sigma * N(0, 1)) per draw
    FEED = 2  # max(0, round(feed latency * feed_multiplier)) + entry / response


class FeedSkip(LabeledEnum):
    """lockstep::venue::FeedSkip (venue/itch_feed.hpp): why the loopback venue's ITCH feed did not
    show an event (counted, reported in the venue's summary)."""

    NOT_MARKET_DATA = 0  # execution and control events, BBO and phase events
    UNKNOWN_ORDER = 1  # an L3 order id with no live order in the feed
    OUT_OF_RANGE = 2  # a price or quantity ITCH's 32-bit fields cannot carry
    NO_CHANGE = 3  # a modify or level update that changes nothing a receiver sees
    WRONG_BOOK_KIND = 4  # an L3 event on an L2 instrument or the reverse
    UNKNOWN_INSTRUMENT = 5
    EXECUTION_PRINT = 6  # the TRADE of an execution the feed already sent as 'E'


# --------------------------------------------------------------------------------------------
# codecs


class FrameStop(LabeledEnum):
    """lockstep::raw::Stop (codecs/raw_capture.hpp): why a walk over raw-capture frames stopped."""

    NEED_MORE = 0  # no whole frame at the position: read more (at end of file, a torn tail)
    OUTPUT_FULL = 1  # the output columns are full: drain them and call again
    BAD_HEADER = 2  # the header fails its checksum or length limit: its length is untrusted
    BAD_FRAME = 3  # the header is valid, the frame checksum is not


class MarketType(LabeledEnum):
    """lockstep::binance::MarketType (codecs/binance/messages.hpp): the Binance market a capture
    is from, "spot", "usdm" or "coinm" ("unknown" until the data tells)."""

    UNKNOWN = 0
    SPOT = 1
    USDM = 2  # USD-M futures (C++ UsdM)
    COINM = 3  # COIN-M futures (C++ CoinM)


class IncrementSource(LabeledEnum):
    """lockstep::binance::IncrementSource (codecs/binance/catalogue.hpp): where an instrument's
    increments came from, reported per instrument by the Binance importer."""

    EXPLICIT = 0  # given with the instrument's index
    OPTION = 1  # the default increments given for every symbol
    BUILTIN = 2  # the built-in table of the market (C++ BuiltIn)
    INFERRED = 3  # learned from the prices and sizes in the data


class BinanceSkip(LabeledEnum):
    """lockstep::binance::Skip (codecs/binance/reports.hpp): why a Binance line produced no
    events; the import report counts lines per label (the C++ skip_name())."""

    EMPTY_LINE = 0
    NOT_STREAM_MESSAGE = 1  # valid JSON that is neither a stream message nor a snapshot
    UNKNOWN_STREAM = 2  # a stream the decoder does not decode
    NON_MARKET_TRADE = 3  # USD-M trade with X != MARKET
    DEPTH_NO_LEVELS = 4
    DEPTH_IN_SNAPSHOT = 5  # already contained in the snapshot that preceded it
    DEPTH_STALE = 6  # older than the chain position
    DEPTH_UNSYNCED = 7  # never met a snapshot
    TRUNCATED_LINE = 8
    MALFORMED = 9
    AGG_TRADE_DUPLICATE = 10  # aggTrade of a symbol that has a trade stream
    TRADE_IN_AGG_TRADE = 11  # trade already emitted as part of an aggTrade


class Crc32cImpl(LabeledEnum):
    """lockstep::crc32c::Impl (base/crc32c.hpp): which CRC32C code path computes a checksum."""

    AUTO = 0  # the hardware path where the CPU has it
    PORTABLE = 1
    SSE42 = 2


class FsyncPolicy(LabeledEnum):
    """lockstep::capture::FsyncPolicy (data/capture.hpp): when the recorder's writer makes
    capture bytes durable (a file is always fsynced when it is closed)."""

    ROTATION = 0  # only when a file is closed
    INTERVAL = 1  # also every fsync interval while bytes are not yet synced
    FRAME = 2  # each frame written and fsynced on its own


class WireProblem(LabeledEnum):
    """lockstep::wire::WireProblem (codecs/wire.hpp): why the NASDAQ protocol codecs (MoldUDP64,
    SoupBinTCP, OUCH) refused bytes; the decoder gives the byte offset with it."""

    NONE = 0
    TRUNCATED = 1  # the bytes end inside a header, a field or a block
    UNKNOWN_TYPE = 2  # a type byte the protocol does not define
    BAD_LENGTH = 3  # a length that disagrees with its type's fixed length, or zero
    OVERSIZED = 4  # a length above the limit the reader was given
    TRAILING_BYTES = 5  # bytes after everything the header announced
    BAD_FIELD = 6  # a field whose content the specification does not allow


class SoupPacketType(LabeledEnum):
    """lockstep::soupbin::PacketType (codecs/soupbintcp.hpp): the SoupBinTCP 4.1 packet types,
    valued by their type byte."""

    DEBUG = ord("+")
    LOGIN_ACCEPTED = ord("A")
    LOGIN_REJECTED = ord("J")
    SEQUENCED_DATA = ord("S")
    SERVER_HEARTBEAT = ord("H")
    END_OF_SESSION = ord("Z")
    LOGIN_REQUEST = ord("L")
    UNSEQUENCED_DATA = ord("U")
    CLIENT_HEARTBEAT = ord("R")
    LOGOUT_REQUEST = ord("O")


class LoginRejectReason(LabeledEnum):
    """lockstep::soupbin::RejectReason (codecs/soupbintcp.hpp): why a SoupBinTCP login was
    rejected, valued by its code byte."""

    NOT_AUTHORIZED = ord("A")
    SESSION_NOT_AVAILABLE = ord("S")


# --------------------------------------------------------------------------------------------
# net


class Transport(LabeledEnum):
    """lockstep::net::Transport: the scheme of an address, "udp" or "tcp"."""

    UDP = 1
    TCP = 2


class StampSource(LabeledEnum):
    """lockstep::net::StampSource: which clock stamped a received datagram. KERNEL: the kernel's
    SO_TIMESTAMPNS stamp, taken when it reached the socket; USER_CLOCK: CLOCK_REALTIME read by
    us right after the batch was read, where the kernel gave no stamp (or was asked for none)."""

    KERNEL = 0
    USER_CLOCK = 1


# --------------------------------------------------------------------------------------------
# session: the protocol sessions (include/lockstep/session/)


class MoldNoticeKind(LabeledEnum):
    """lockstep::session::MoldNoticeKind (session/mold_receiver.hpp): what a MoldUDP64 receiver
    decided that its caller must hear about; `first` and `count` of the notice say which
    sequence numbers."""

    SESSION_STARTED = 1  # the first session followed
    SESSION_CHANGED = 2  # another session followed from here
    GAP_DETECTED = 3  # messages missing: first, count
    GAP_RECOVERED = 4  # every missing message arrived
    GAP_ABANDONED = 5  # first, count never delivered: the book is not to be trusted
    END_OF_SESSION = 6
    HEARTBEAT_TIMEOUT = 7  # count: ns since the last datagram
    FEED_RESUMED = 8  # a datagram after a heartbeat timeout


class SoupClientState(LabeledEnum):
    """lockstep::session::SoupClientState (session/soup_client.hpp): where a SoupBinTCP client
    session stands. REJECTED, ENDED, LOGGED_OUT and FAILED want the connection closed."""

    DISCONNECTED = 0
    LOGGING_IN = 1
    LOGGED_IN = 2
    REJECTED = 3
    ENDED = 4
    LOGGED_OUT = 5
    FAILED = 6


class SoupNoticeKind(LabeledEnum):
    """lockstep::session::SoupNoticeKind (session/soup_client.hpp): what a SoupBinTCP client
    session decided that its caller must hear about."""

    LOGIN_ACCEPTED = 1  # first: the sequence number the server continues at
    LOGIN_REJECTED = 2  # count: the reason byte
    SEQUENCE_GAP = 3  # first, count: asked for, no longer available at the server
    END_OF_SESSION = 4
    SERVER_TIMEOUT = 5  # count: ns the server was silent
    PROTOCOL_ERROR = 6  # first: stream offset; count: the WireProblem
    UNEXPECTED_PACKET = 7  # first: stream offset; count: the type byte


# --------------------------------------------------------------------------------------------
# runtime


class RunStatus(LabeledEnum):
    """lockstep::RunStatus: how Engine.run / finish ended."""

    OK = 0
    STRATEGY_FAILED = 1  # the strategy raised
    RISK_HOOK_FAILED = 2  # a custom risk rule raised
    LIVELOCK = 3  # too many venue round trips between two market events


class LoopExit(LabeledEnum):
    """lockstep::live::LoopExit (runtime/live_loop.hpp): why the live node's C++ loop returned
    to Python."""

    TURNS = 0  # its turns ran out
    TIME = 1  # its time budget ran out
    ORDER_ENTRY = 2  # the order-entry socket is readable
    CONTROL = 3  # the control socket is readable
    NOTICE = 4  # the MoldUDP64 receiver decided something
    UNSENT = 5  # OUCH messages left for the order-entry client to send
    FAILED = 6  # the strategy failed
    JOURNAL_FAILED = 7  # the journal writer failed
    SOCKET_ERROR = 8  # a feed socket failed


# recorder


class MoldVerdict(LabeledEnum):
    """lockstep::capture::MoldVerdict (data/mold_capture.hpp): what the recorder did with one
    datagram of a MoldUDP64 feed; the labels of the refused ones are the summary's `rejected`
    reasons."""

    RECORDED = 0
    MALFORMED = 1  # shorter than a MoldUDP64 header, or cut by its slot
    WRONG_SOURCE = 2  # from another host (or, for replies, another port) than configured
    WRONG_SESSION = 3  # of a session the receiver does not follow
    IMPLAUSIBLE = 4  # announcing a sequence too far past the next expected one
    DROPPED = 5  # the session's, but its capture ring was full (told in a drop record)


__all__ = [
    "Anomaly",
    "BinanceSkip",
    "BookKind",
    "Crc32cImpl",
    "ExecResult",
    "FeedSkip",
    "FrameStop",
    "FsyncPolicy",
    "IncrementSource",
    "IntentKind",
    "L2Result",
    "L3Result",
    "LabeledEnum",
    "LatencyKind",
    "LoginRejectReason",
    "LoopExit",
    "MarketType",
    "MatchEventKind",
    "MatchReject",
    "MoldNoticeKind",
    "MoldVerdict",
    "OrderStatus",
    "QueueModel",
    "QueueResult",
    "RiskReason",
    "Rule",
    "RuleAction",
    "RunStatus",
    "SoupClientState",
    "SoupNoticeKind",
    "SoupPacketType",
    "StampSource",
    "Status",
    "SubmitOutcome",
    "TimeInForce",
    "TradingMode",
    "TradingPhase",
    "Transport",
    "WireProblem",
]
