// Making demangled C++ names readable in a terminal: template arguments collapse to <…> and
// parameter lists are dropped, so "ns::Foo<std::vector<int>>::bar(int) const" reads "ns::Foo<…>::bar".
// The full name stays in JSON output.
#pragma once

#include <string>
#include <string_view>

namespace periscope {

std::string short_function_name(std::string_view demangled);

}  // namespace periscope
