#pragma once
// Everything of the blocking layer in one include.

#include "orderly/core/deadline.hpp"
#include "orderly/core/errc.hpp"
#include "orderly/core/error_info.hpp"
#include "orderly/core/result.hpp"
#include "orderly/core/unique_fd.hpp"
#include "orderly/net/close_report.hpp"
#include "orderly/net/connect.hpp"
#include "orderly/net/connect_report.hpp"
#include "orderly/net/endpoint.hpp"
#include "orderly/net/eyeballs.hpp"
#include "orderly/net/hosts_file.hpp"
#include "orderly/net/listener.hpp"
#include "orderly/net/resolve.hpp"
#include "orderly/net/socket_options.hpp"
#include "orderly/net/stream_socket.hpp"
#include "orderly/net/tcp_info.hpp"
