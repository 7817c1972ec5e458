//! Word lists the generator draws from: surnames by frequency, given names,
//! mobile prefixes, email domains, the administrative geography, streets.

/// Common surnames with their approximate share of the population in
/// per-mille (census order: 王 李 张 刘 陈 …), including a few compound ones.
pub const SURNAMES: &[(&str, u32)] = &[
    ("王", 71),
    ("李", 70),
    ("张", 67),
    ("刘", 54),
    ("陈", 45),
    ("杨", 31),
    ("黄", 22),
    ("赵", 20),
    ("吴", 19),
    ("周", 19),
    ("徐", 15),
    ("孙", 15),
    ("马", 14),
    ("朱", 13),
    ("胡", 12),
    ("郭", 11),
    ("何", 10),
    ("高", 10),
    ("林", 10),
    ("罗", 9),
    ("郑", 8),
    ("梁", 8),
    ("谢", 6),
    ("宋", 6),
    ("唐", 6),
    ("许", 5),
    ("韩", 5),
    ("冯", 5),
    ("邓", 5),
    ("曹", 5),
    ("彭", 4),
    ("曾", 4),
    ("肖", 4),
    ("田", 4),
    ("董", 4),
    ("袁", 3),
    ("潘", 3),
    ("于", 3),
    ("蒋", 3),
    ("蔡", 3),
    ("余", 3),
    ("杜", 3),
    ("叶", 3),
    ("程", 3),
    ("苏", 3),
    ("魏", 3),
    ("吕", 3),
    ("丁", 3),
    ("任", 3),
    ("沈", 3),
    ("姚", 2),
    ("卢", 2),
    ("姜", 2),
    ("崔", 2),
    ("钟", 2),
    ("谭", 2),
    ("陆", 2),
    ("汪", 2),
    ("范", 2),
    ("金", 2),
    ("石", 2),
    ("廖", 2),
    ("贾", 2),
    ("夏", 2),
    ("韦", 2),
    ("付", 2),
    ("方", 2),
    ("白", 2),
    ("邹", 2),
    ("孟", 2),
    ("熊", 2),
    ("秦", 2),
    ("邱", 2),
    ("江", 2),
    ("尹", 2),
    ("薛", 2),
    ("闫", 2),
    ("段", 2),
    ("雷", 2),
    ("侯", 2),
    ("龙", 2),
    ("史", 2),
    ("陶", 1),
    ("黎", 1),
    ("贺", 1),
    ("顾", 1),
    ("毛", 1),
    ("郝", 1),
    ("龚", 1),
    ("邵", 1),
    ("万", 1),
    ("钱", 1),
    ("严", 1),
    ("覃", 1),
    ("武", 1),
    ("戴", 1),
    ("莫", 1),
    ("孔", 1),
    ("向", 1),
    ("汤", 1),
    ("单", 1),
    ("翟", 1),
    ("欧阳", 1),
    ("司马", 1),
    ("诸葛", 1),
    ("上官", 1),
];

/// Surnames whose reading differs from the character's most common one.
pub const SURNAME_READINGS: &[(&str, &str)] = &[
    ("曾", "zeng"),
    ("单", "shan"),
    ("解", "xie"),
    ("仇", "qiu"),
    ("区", "ou"),
    ("查", "zha"),
    ("朴", "piao"),
    ("乐", "yue"),
    ("覃", "qin"),
    ("翟", "zhai"),
    ("盖", "ge"),
];

/// Whole given names so popular that many unrelated people share them.
pub const POPULAR_MALE: &[&str] = &[
    "伟", "磊", "强", "军", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华", "飞", "鑫",
    "波", "斌", "宇", "浩", "凯", "健", "俊", "建华", "建国", "建军", "志强", "志明", "海涛",
    "俊杰", "浩然", "子轩", "宇轩", "浩宇",
];
pub const POPULAR_FEMALE: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀英", "秀兰", "桂英", "玉兰", "婷", "雪",
    "慧", "琳", "颖", "倩", "洁", "晶", "燕", "红", "梅", "欣怡", "子涵", "诗涵", "梓涵", "雨涵",
    "佳怡", "思琪",
];

/// Characters given names are composed from when not a popular whole name.
pub const MALE_CHARS: &str = "伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发武新利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功松善厚庆磊民友裕河哲江超浩亮政谦亨奇固之轮翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士以建家致树炎德行时泰盛雄琛钧冠策腾楠榕风航弘";
pub const FEMALE_CHARS: &str = "秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨琰韵园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希欣飘育滢馥筠柔竹凝晓欢霄枫芸菲寒伊亚宜可舒影荔丽阳妮宝贝初程恒鸿桦骅娇纪灵琪晴容睿堂唯雯萱彦宇雨洋曼紫逸贤蝶菡";
/// Extra characters that sound like common name characters, so a typist's
/// same-sounding or near-sounding slip has somewhere to land.
pub const SOUND_ALIKE_CHARS: &str = "玮炜苇铭茗婧靖捷方那纳花钧均垒蕾泳韬焘蔷珉闵鹃涓侠夏砚亭庭霆蕙晖徽霖麟莹盈瑛谦潮朝钢纲岗苹屏彭非妃新馨柏泊滨宾语钰煜昊皓恺楷锴剑坚骏峻繁煦序柠隆珑扬杨玫媚岚蓝虹宏洪琇绣静金京景敬进劲锦今林临凌铃领令陵珍真贞振镇震正争征城诚承成陈晨沉臣尘申深身伸生声胜升盛森僧";

/// Mobile prefixes in use (13x, 15x, 18x, 19x families).
pub const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "180", "181", "182", "183", "185", "186", "187",
    "188", "189", "191", "198", "199",
];

/// Email domains with rough weights (QQ mail dominates).
pub const EMAIL_DOMAINS: &[(&str, u32)] = &[
    ("qq.com", 40),
    ("163.com", 20),
    ("126.com", 10),
    ("gmail.com", 6),
    ("sina.com", 5),
    ("hotmail.com", 5),
    ("outlook.com", 5),
    ("foxmail.com", 4),
    ("yeah.net", 2),
    ("aliyun.com", 2),
    ("139.com", 1),
];

/// A city with its districts.
pub struct City {
    pub name: &'static str,
    pub districts: &'static [&'static str],
}

/// A province (or municipality, whose one city has its own name) with a
/// rough population weight.
pub struct Province {
    pub name: &'static str,
    pub weight: u32,
    pub cities: &'static [City],
}

pub const PROVINCES: &[Province] = &[
    Province {
        name: "广东省",
        weight: 12,
        cities: &[
            City {
                name: "广州市",
                districts: &["天河区", "越秀区", "海珠区", "白云区"],
            },
            City {
                name: "深圳市",
                districts: &["南山区", "福田区", "宝安区", "龙岗区"],
            },
            City {
                name: "佛山市",
                districts: &["禅城区", "南海区", "顺德区"],
            },
            City {
                name: "东莞市",
                districts: &["南城街道", "东城街道", "虎门镇"],
            },
        ],
    },
    Province {
        name: "浙江省",
        weight: 7,
        cities: &[
            City {
                name: "杭州市",
                districts: &["西湖区", "拱墅区", "滨江区", "余杭区"],
            },
            City {
                name: "宁波市",
                districts: &["海曙区", "鄞州区", "江北区"],
            },
            City {
                name: "温州市",
                districts: &["鹿城区", "瓯海区"],
            },
        ],
    },
    Province {
        name: "江苏省",
        weight: 8,
        cities: &[
            City {
                name: "南京市",
                districts: &["玄武区", "鼓楼区", "建邺区", "秦淮区"],
            },
            City {
                name: "苏州市",
                districts: &["姑苏区", "吴中区", "相城区"],
            },
            City {
                name: "无锡市",
                districts: &["梁溪区", "滨湖区"],
            },
        ],
    },
    Province {
        name: "山东省",
        weight: 9,
        cities: &[
            City {
                name: "济南市",
                districts: &["历下区", "市中区", "槐荫区"],
            },
            City {
                name: "青岛市",
                districts: &["市南区", "崂山区", "黄岛区"],
            },
        ],
    },
    Province {
        name: "四川省",
        weight: 6,
        cities: &[
            City {
                name: "成都市",
                districts: &["锦江区", "武侯区", "青羊区", "成华区"],
            },
            City {
                name: "绵阳市",
                districts: &["涪城区", "游仙区"],
            },
        ],
    },
    Province {
        name: "湖北省",
        weight: 4,
        cities: &[
            City {
                name: "武汉市",
                districts: &["江汉区", "武昌区", "洪山区", "江岸区"],
            },
            City {
                name: "宜昌市",
                districts: &["西陵区", "伍家岗区"],
            },
        ],
    },
    Province {
        name: "湖南省",
        weight: 5,
        cities: &[City {
            name: "长沙市",
            districts: &["岳麓区", "芙蓉区", "天心区", "开福区"],
        }],
    },
    Province {
        name: "河南省",
        weight: 7,
        cities: &[
            City {
                name: "郑州市",
                districts: &["金水区", "二七区", "中原区"],
            },
            City {
                name: "洛阳市",
                districts: &["西工区", "洛龙区"],
            },
        ],
    },
    Province {
        name: "河北省",
        weight: 5,
        cities: &[City {
            name: "石家庄市",
            districts: &["长安区", "桥西区", "裕华区"],
        }],
    },
    Province {
        name: "福建省",
        weight: 3,
        cities: &[
            City {
                name: "福州市",
                districts: &["鼓楼区", "台江区", "仓山区"],
            },
            City {
                name: "厦门市",
                districts: &["思明区", "湖里区"],
            },
        ],
    },
    Province {
        name: "陕西省",
        weight: 3,
        cities: &[City {
            name: "西安市",
            districts: &["雁塔区", "碑林区", "未央区"],
        }],
    },
    Province {
        name: "辽宁省",
        weight: 3,
        cities: &[
            City {
                name: "沈阳市",
                districts: &["和平区", "沈河区", "皇姑区"],
            },
            City {
                name: "大连市",
                districts: &["中山区", "甘井子区"],
            },
        ],
    },
    Province {
        name: "安徽省",
        weight: 4,
        cities: &[City {
            name: "合肥市",
            districts: &["蜀山区", "包河区", "庐阳区"],
        }],
    },
    Province {
        name: "广西壮族自治区",
        weight: 3,
        cities: &[City {
            name: "南宁市",
            districts: &["青秀区", "西乡塘区"],
        }],
    },
    Province {
        name: "云南省",
        weight: 3,
        cities: &[City {
            name: "昆明市",
            districts: &["五华区", "盘龙区"],
        }],
    },
    Province {
        name: "北京市",
        weight: 4,
        cities: &[City {
            name: "北京市",
            districts: &["朝阳区", "海淀区", "东城区", "西城区", "丰台区"],
        }],
    },
    Province {
        name: "上海市",
        weight: 5,
        cities: &[City {
            name: "上海市",
            districts: &["浦东新区", "黄浦区", "徐汇区", "静安区", "闵行区"],
        }],
    },
    Province {
        name: "天津市",
        weight: 2,
        cities: &[City {
            name: "天津市",
            districts: &["和平区", "南开区", "河西区"],
        }],
    },
    Province {
        name: "重庆市",
        weight: 3,
        cities: &[City {
            name: "重庆市",
            districts: &["渝中区", "江北区", "南岸区", "渝北区"],
        }],
    },
];

pub const STREETS: &[&str] = &[
    "中山路",
    "人民路",
    "解放路",
    "建设路",
    "和平路",
    "新华路",
    "长江路",
    "黄河路",
    "滨江大道",
    "科技园路",
    "文化路",
    "朝阳路",
    "青年路",
    "东风路",
    "胜利路",
    "幸福路",
    "光明路",
    "学院路",
    "友谊路",
    "花园路",
    "南京路",
    "北京路",
    "迎宾大道",
    "工业大道",
    "体育路",
    "公园路",
    "环城东路",
    "府前街",
];

pub const COMMUNITIES: &[&str] = &[
    "阳光花园",
    "幸福小区",
    "碧桂园",
    "万科城",
    "金地花园",
    "绿城桂花苑",
    "保利花园",
    "华润城",
    "锦绣家园",
    "翡翠湾",
    "世纪新城",
    "龙湖天街",
    "恒大名都",
    "春江花月",
    "紫荆苑",
    "丽景湾",
    "天一家园",
    "东湖小区",
];

/// Parts of company names: a trade word and an industry.
pub const COMPANY_WORDS: &[&str] = &[
    "华创", "腾达", "恒信", "鑫源", "瑞丰", "中科", "长盛", "博远", "新宇", "嘉禾", "联泰", "锦程",
    "天成", "汇通", "正邦",
];
pub const INDUSTRIES: &[&str] = &[
    "科技",
    "贸易",
    "电子",
    "网络科技",
    "餐饮管理",
    "物流",
    "建筑工程",
    "信息技术",
    "文化传媒",
    "医疗器械",
];

/// Channels records arrive from, each with its own external-id shape.
pub const CHANNELS: &[&str] = &[
    "wechat",
    "taobao",
    "tmall",
    "jd",
    "douyin",
    "app",
    "store_pos",
    "crm_import",
];
