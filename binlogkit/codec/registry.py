"""Which spec parses and builds each event type's body."""

from __future__ import annotations

import construct as c

from binlogkit.codec.events import cluster, control, gtid, payload, rows, statement
from binlogkit.codec.types import EventType as T

SPECS: dict[int, c.Construct] = {
    T.START_V3: control.StartV3,
    T.QUERY: statement.Query,
    T.STOP: control.Raw,
    T.ROTATE: control.Rotate,
    T.INTVAR: statement.Intvar,
    T.LOAD: statement.Load,
    T.SLAVE: control.Slave,
    T.CREATE_FILE: statement.CreateFile,
    T.APPEND_BLOCK: statement.Block,
    T.EXEC_LOAD: statement.FileId,
    T.DELETE_FILE: statement.FileId,
    T.NEW_LOAD: statement.NewLoad,
    T.RAND: statement.Rand,
    T.USER_VAR: statement.UserVar,
    T.FORMAT_DESCRIPTION: control.FormatDescription,
    T.XID: control.Xid,
    T.BEGIN_LOAD_QUERY: statement.Block,
    T.EXECUTE_LOAD_QUERY: statement.ExecuteLoadQuery,
    T.TABLE_MAP: rows.TableMap,
    T.PRE_GA_WRITE_ROWS: rows.Rows,
    T.PRE_GA_UPDATE_ROWS: rows.Rows,
    T.PRE_GA_DELETE_ROWS: rows.Rows,
    T.WRITE_ROWS_V1: rows.Rows,
    T.UPDATE_ROWS_V1: rows.UpdateRows,
    T.DELETE_ROWS_V1: rows.Rows,
    T.INCIDENT: control.Incident,
    T.HEARTBEAT: control.Heartbeat,
    T.IGNORABLE: control.Raw,
    T.ROWS_QUERY: statement.RowsQuery,
    T.WRITE_ROWS_V2: rows.Rows,
    T.UPDATE_ROWS_V2: rows.UpdateRows,
    T.DELETE_ROWS_V2: rows.Rows,
    T.GTID: gtid.Gtid,
    T.ANONYMOUS_GTID: gtid.Gtid,
    T.PREVIOUS_GTIDS: gtid.PreviousGtids,
    T.TRANSACTION_CONTEXT: cluster.TransactionContext,
    T.VIEW_CHANGE: cluster.ViewChange,
    T.XA_PREPARE: cluster.XaPrepare,
    T.PARTIAL_UPDATE_ROWS: rows.UpdateRows,
    T.TRANSACTION_PAYLOAD: payload.TransactionPayload,
    T.HEARTBEAT_V2: gtid.HeartbeatV2,
    T.GTID_TAGGED: gtid.GtidTagged,
    T.ANNOTATE_ROWS: statement.AnnotateRows,
    T.BINLOG_CHECKPOINT: gtid.BinlogCheckpoint,
    T.MARIADB_GTID: gtid.MariadbGtid,
    T.GTID_LIST: gtid.GtidList,
    T.START_ENCRYPTION: control.StartEncryption,
    T.QUERY_COMPRESSED: statement.Query,
    T.WRITE_ROWS_COMPRESSED_V1: rows.Rows,
    T.UPDATE_ROWS_COMPRESSED_V1: rows.UpdateRows,
    T.DELETE_ROWS_COMPRESSED_V1: rows.Rows,
    T.WRITE_ROWS_COMPRESSED: rows.Rows,
    T.UPDATE_ROWS_COMPRESSED: rows.UpdateRows,
    T.DELETE_ROWS_COMPRESSED: rows.Rows,
}


def spec_for(type_code: int) -> c.Construct:
    """The body spec of a type; unknown types get the raw spec."""
    return SPECS.get(type_code, control.Raw)
