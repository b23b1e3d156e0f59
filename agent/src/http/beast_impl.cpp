// Boost.Beast compiled once for the whole agent (BOOST_BEAST_SEPARATE_COMPILATION), like Asio in
// manhole/asio_impl.cpp: the HTTP sources include only declarations. The core and HTTP parts
// only (what <boost/beast/src.hpp> lists, less websocket, zlib and the test stream): the websocket
// generators alone would put 128 bytes of thread-local state in the static TLS block that an
// agent loaded by `periscope inject` must find room for.
#define BOOST_BEAST_SOURCE  // as <boost/beast/src.hpp> does

#include <boost/beast/core/detail/config.hpp>

#include <boost/beast/core/detail/base64.ipp>
#include <boost/beast/core/detail/impl/temporary_buffer.ipp>
#include <boost/beast/core/detail/sha1.ipp>
#include <boost/beast/core/impl/error.ipp>
#include <boost/beast/core/impl/file_posix.ipp>
#include <boost/beast/core/impl/file_stdio.ipp>
#include <boost/beast/core/impl/flat_static_buffer.ipp>
#include <boost/beast/core/impl/saved_handler.ipp>
#include <boost/beast/core/impl/static_buffer.ipp>
#include <boost/beast/core/impl/string.ipp>
#include <boost/beast/http/detail/basic_parser.ipp>
#include <boost/beast/http/detail/rfc7230.ipp>
#include <boost/beast/http/impl/basic_parser.ipp>
#include <boost/beast/http/impl/error.ipp>
#include <boost/beast/http/impl/field.ipp>
#include <boost/beast/http/impl/fields.ipp>
#include <boost/beast/http/impl/rfc7230.ipp>
#include <boost/beast/http/impl/status.ipp>
#include <boost/beast/http/impl/verb.ipp>
